// Child process for the lock race test: on each IPC message {dir, at} it waits (spinning, for the same millisecond as
// its sibling) until `at`, tries to lock `dir` and answers 'locked' or 'refused'. It keeps every lock it takes.
// Usage: node --import tsx test-lock-taker.ts (with an IPC channel).
import { lockDirectory } from './spool-lock.js';

process.on('message', (m: { dir: string; at: number }) => {
  while (Date.now() < m.at);
  let answer: string;
  try {
    lockDirectory(m.dir);
    answer = 'locked';
  } catch (err) {
    answer = /in use by/.test((err as Error).message) ? 'refused' : `error: ${(err as Error).message}`;
  }
  process.send!(answer);
});
process.send!('ready');
