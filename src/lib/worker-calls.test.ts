import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { WorkerCalls, WorkerExitedError } from './worker-calls.js';

/** Answers `{ n }` with `{ seq, doubled }` after `n` ms (so later calls can answer first); `stop` exits, `hang` ignores. */
const ECHO = `
const { parentPort } = require('node:worker_threads');
parentPort.postMessage({ note: 'started' });
parentPort.on('message', (m) => {
  if (m.type === 'stop') return parentPort.close();
  if (m.type === 'crash') throw new Error('boom');
  if (m.type === 'hang') return;
  setTimeout(() => parentPort.postMessage({ seq: m.seq, doubled: m.n * 2 }), m.n);
});`;

// The threads are unref'd (they must not hold a process open): the test keeps its own loop alive while it waits.
let alive: NodeJS.Timeout;
before(() => (alive = setInterval(() => {}, 1000)));
after(() => clearInterval(alive));

type Request = { type: 'double'; n: number } | { type: 'stop' } | { type: 'crash' } | { type: 'hang' };
type Answer = { seq: number; doubled: number };

function calls(extra: { onMessage?: (m: unknown) => void; onError?: (e: Error) => void } = {}) {
  return new WorkerCalls<Request, Answer>(new Worker(ECHO, { eval: true }), { name: 'echo', ...extra });
}

test('answers reach their own calls, in whatever order they come; other messages go to onMessage', async () => {
  const others: unknown[] = [];
  const c = calls({ onMessage: (m) => others.push(m) });
  const [slow, fast] = await Promise.all([c.call({ type: 'double', n: 40 }), c.call({ type: 'double', n: 1 })]);
  assert.equal(slow.doubled, 80);
  assert.equal(fast.doubled, 2);
  assert.deepEqual(others, [{ note: 'started' }]);
  await c.close({ type: 'stop' }, 5000);
  assert.equal(c.exited, true);
});

test('a thread that fails fails the calls waiting on it and every later call; its error is reported', async () => {
  const errors: Error[] = [];
  const c = calls({ onError: (e) => errors.push(e) });
  const waiting = c.call({ type: 'double', n: 10_000 });
  void c.call({ type: 'crash' }).catch(() => {});
  // A WorkerExitedError, which callers can answer as "try again" (the stats route's 503 stats_unavailable).
  await assert.rejects(waiting, (err: Error) => err instanceof WorkerExitedError && /the echo thread exited/.test(err.message));
  assert.match(String(errors[0]?.message), /boom/);
  await assert.rejects(c.call({ type: 'double', n: 1 }), (err: Error) => err instanceof WorkerExitedError && /the echo thread has exited/.test(err.message));
  await c.close({ type: 'stop' }, 5000);
});

test('close terminates a thread that does not finish within the wait', async () => {
  const c = calls();
  const started = performance.now();
  await c.close({ type: 'hang' }, 50);
  assert.equal(c.exited, true);
  assert.ok(performance.now() - started < 5000);
});
