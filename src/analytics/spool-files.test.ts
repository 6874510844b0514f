// The analytics directory's lock: one writer at a time, and a lock its owner left behind (killed, or its process
// number since given to another process) taken over.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lockDirectory } from './spool-files.js';

const LINUX = process.platform === 'linux';

test('a live owner keeps the directory; a dead one, or one whose number another process now has, does not', { skip: LINUX ? undefined : 'needs /proc' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-lock-'));
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  await once(other, 'spawn');
  try {
    const release = lockDirectory(dir);
    const mine = readFileSync(join(dir, 'LOCK'), 'utf8');
    assert.match(mine, new RegExp(`^${process.pid} \\S+/\\d+$`), 'the pid and which process it is');
    release();

    // The other process's own lock (its identity, as it would have written it): it runs, so the directory is taken.
    const stat = readFileSync(`/proc/${other.pid}/stat`, 'utf8');
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    writeFileSync(join(dir, 'LOCK'), `${other.pid} ${boot}/${start}`);
    assert.throws(() => lockDirectory(dir), new RegExp(`in use by process ${other.pid}`));

    // A lock of a process that died, whose number the other process got since: before, refused until deleted by hand.
    writeFileSync(join(dir, 'LOCK'), `${other.pid} ${boot}/1`);
    lockDirectory(dir)();

    // The same in the bare-pid form older versions wrote: the process with that number started after the lock was.
    writeFileSync(join(dir, 'LOCK'), String(other.pid));
    const longAgo = new Date(Date.now() - 3_600_000);
    utimesSync(join(dir, 'LOCK'), longAgo, longAgo);
    lockDirectory(dir)();
    // ...while a bare-pid lock written after the process started is still its.
    writeFileSync(join(dir, 'LOCK'), String(other.pid));
    assert.throws(() => lockDirectory(dir), new RegExp(`in use by process ${other.pid}`));
  } finally {
    other.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a killed owner not yet reaped (a zombie) holds nothing', { skip: LINUX ? undefined : 'needs /proc' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-lock-'));
  // A process killed while its parent never waits for it stays a zombie: a shell's background sleep, killed once the
  // shell has been replaced by a sleep that reaps nothing (killed before, the shell itself could reap it).
  const parent = spawn('sh', ['-c', 'sleep 60 & echo $! ; exec sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const [line] = (await once(parent.stdout!, 'data')) as [Buffer];
    const zombie = Number(String(line).trim());
    const comm = () => readFileSync(`/proc/${parent.pid}/comm`, 'utf8').trim();
    for (let i = 0; i < 200 && comm() !== 'sleep'; i++) await new Promise((r) => setTimeout(r, 10));
    process.kill(zombie, 'SIGKILL');
    const state = () => readFileSync(`/proc/${zombie}/stat`, 'utf8');
    for (let i = 0; i < 200 && !/\) Z /.test(state()); i++) await new Promise((r) => setTimeout(r, 10));
    assert.match(state(), /\) Z /, 'a zombie');
    writeFileSync(join(dir, 'LOCK'), String(zombie));
    lockDirectory(dir)();
  } finally {
    parent.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

const TAKER = fileURLToPath(new URL('./test-lock-taker.ts', import.meta.url));

test('of two processes starting at the same moment exactly one takes the directory, with or without a stale lock', { skip: LINUX ? undefined : 'needs /proc' }, async () => {
  const takers: ChildProcess[] = [];
  const dirs: string[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const child = spawn(process.execPath, ['--import', 'tsx', TAKER], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      takers.push(child);
      assert.equal((await once(child, 'message'))[0], 'ready');
    }
    const outcomes: string[] = [];
    for (let trial = 0; trial < 60; trial++) {
      const dir = mkdtempSync(join(tmpdir(), 'tollgate-lock-race-'));
      dirs.push(dir);
      // Every other trial starts from a lock its owner left behind (a process number no process can have).
      if (trial % 2 === 1) writeFileSync(join(dir, 'LOCK'), '999999999 gone/1');
      const answers = takers.map(async (t) => (await once(t, 'message'))[0] as string);
      const at = Date.now() + 30;
      for (const t of takers) t.send({ dir, at });
      outcomes.push((await Promise.all(answers)).sort().join('+'));
      // Whoever won, the lock left is theirs alone, and no file moved aside while judging a stale lock stays behind.
      assert.deepEqual(readdirSync(dir), ['LOCK']);
    }
    // Before, both took it in about one start in four: two pipelines would append to and delete the same segments.
    assert.deepEqual(new Set(outcomes), new Set(['locked+refused']));
  } finally {
    for (const t of takers) t.kill('SIGKILL');
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
});
