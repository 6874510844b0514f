// The analytics directory's lock: one writer at a time; a lock its owner left behind (killed, or its process number
// since given to another process) taken over; one of another PID namespace judged by its heartbeat.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lockDirectory } from './spool-lock.js';
import { moduleArgs } from '../lib/module-child.js';

const LINUX = process.platform === 'linux';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fresh = () => mkdtempSync(join(tmpdir(), 'tollgate-lock-'));

/** What this process writes in a lock, for tests to write locks of other processes from. */
function ownLock(): Record<string, unknown> {
  const dir = fresh();
  try {
    const lock = lockDirectory(dir);
    const text = readFileSync(join(dir, 'LOCK'), 'utf8');
    lock.release();
    return JSON.parse(text) as Record<string, unknown>;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The start time /proc gives process `pid` (clock ticks after boot). */
function startTicks(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

/** Writes a lock as process `pid` of this process's namespace, or (`elsewhere`) of another one, would have. */
function writeLock(dir: string, fields: Record<string, unknown>, { ageMs = 0 } = {}): void {
  const path = join(dir, 'LOCK');
  writeFileSync(path, JSON.stringify({ ...ownLock(), token: `t${Math.random()}`, ...fields }));
  const at = new Date(Date.now() - ageMs);
  utimesSync(path, at, at);
}

/** Another container's gateway: its host, boot and PID namespace are not this one's, and its pid may well be ours. */
const ELSEWHERE = { host: 'other-container', boot: 'another-boot', pidNamespace: 'pid:[4026532999]' };

const QUICK = { heartbeatMs: 100, graceMs: 600 };

test('the lock names this process, its host and PID namespace, with a token of its own; the owner refreshes it', { skip: LINUX ? undefined : 'needs /proc' }, async () => {
  const dir = fresh();
  try {
    const lock = lockDirectory(dir, { timing: QUICK });
    const written = JSON.parse(readFileSync(join(dir, 'LOCK'), 'utf8')) as Record<string, unknown>;
    assert.equal(written.pid, process.pid);
    assert.equal(written.start, startTicks(process.pid));
    assert.match(String(written.pidNamespace), /^pid:\[\d+\]$/);
    assert.match(String(written.token), /^[0-9a-f]{32}$/);
    const before = statSync(join(dir, 'LOCK')).mtimeMs;
    await sleep(350);
    assert.ok(statSync(join(dir, 'LOCK')).mtimeMs > before, 'refreshed by the heartbeat');
    assert.equal(lock.held(), true);
    lock.release();
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('in this PID namespace a live owner keeps the directory at once; a dead one, or one whose number another process now has, does not', { skip: LINUX ? undefined : 'needs /proc' }, async () => {
  const dir = fresh();
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  await once(other, 'spawn');
  try {
    // Its own lock, as it would have written it: refused without waiting for a heartbeat (this one never comes).
    writeLock(dir, { pid: other.pid, start: startTicks(other.pid!) });
    const t = performance.now();
    assert.throws(() => lockDirectory(dir), new RegExp(`in use by process ${other.pid} on `));
    assert.ok(performance.now() - t < 1000, 'judged by its pid');

    // A process that died, whose number the other process got since: taken at once, however fresh the lock.
    writeLock(dir, { pid: other.pid, start: '1' });
    lockDirectory(dir).release();
    writeLock(dir, { pid: 999_999_999 });
    lockDirectory(dir).release();
  } finally {
    other.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a killed owner not yet reaped (a zombie) holds nothing', { skip: LINUX ? undefined : 'needs /proc' }, async () => {
  const dir = fresh();
  // A process killed while its parent never waits for it stays a zombie: a shell's background sleep, killed once the
  // shell has been replaced by a sleep that reaps nothing (killed before, the shell itself could reap it).
  const parent = spawn('sh', ['-c', 'sleep 60 & echo $! ; exec sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const [line] = (await once(parent.stdout!, 'data')) as [Buffer];
    const zombie = Number(String(line).trim());
    const comm = () => readFileSync(`/proc/${parent.pid}/comm`, 'utf8').trim();
    for (let i = 0; i < 200 && comm() !== 'sleep'; i++) await sleep(10);
    const start = startTicks(zombie);
    process.kill(zombie, 'SIGKILL');
    const state = () => readFileSync(`/proc/${zombie}/stat`, 'utf8');
    for (let i = 0; i < 200 && !/\) Z /.test(state()); i++) await sleep(10);
    assert.match(state(), /\) Z /, 'a zombie');
    writeLock(dir, { pid: zombie, start });
    lockDirectory(dir).release();
  } finally {
    parent.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a lock of another PID namespace is judged by its heartbeat, whatever its pid (ours, or 1 as in a container)', { skip: LINUX ? undefined : 'needs /proc' }, async () => {
  const dir = fresh();
  const path = join(dir, 'LOCK');
  // The other gateway, refreshing its lock as an owner does (from another process: the claim below blocks this one).
  let toucher: ChildProcess | undefined;
  try {
    for (const pid of [process.pid, 1]) {
      writeLock(dir, { ...ELSEWHERE, pid });
      toucher = spawn(process.execPath, ['-e', `const fs = require('fs'); setInterval(() => fs.utimesSync(${JSON.stringify(path)}, new Date(), new Date()), 50)`], { stdio: 'ignore' });
      const written = statSync(path).mtimeMs;
      for (let i = 0; i < 500 && statSync(path).mtimeMs === written; i++) await sleep(10);
      // Before, a lock naming this process's own pid, or one that kill(pid, 0) could not see, was taken over: two
      // gateways in two containers on one volume both ran on the directory, and billing records were lost.
      assert.throws(() => lockDirectory(dir, { timing: QUICK }), new RegExp(`in use by process ${pid} on other-container`));
      toucher.kill('SIGKILL');
      await once(toucher, 'exit');

      // Not refreshed for longer than the grace: its owner is gone, and the directory is taken once a heartbeat and a
      // half has shown no refresh (the owner's clock may be behind this one's: see the clock test below).
      writeLock(dir, { ...ELSEWHERE, pid }, { ageMs: 3_600_000 });
      const t = performance.now();
      lockDirectory(dir, { timing: QUICK }).release();
      const waited = performance.now() - t;
      assert.ok(waited >= 150 && waited < 1000, `waited ${Math.round(waited)} ms`);
    }

    // Refreshed moments ago, then no more (a container killed and restarted): the grace is waited out, then it is taken.
    writeLock(dir, { ...ELSEWHERE, pid: 1 }, { ageMs: 100 });
    let t = performance.now();
    lockDirectory(dir, { timing: QUICK }).release();
    const waited = performance.now() - t;
    assert.ok(waited >= 400 && waited < 2000, `waited ${Math.round(waited)} ms for a grace of 600 ms`);

    // Without waiting (a running pipeline claiming again), such a lock counts as in use.
    writeLock(dir, { ...ELSEWHERE, pid: 1 }, { ageMs: 100 });
    t = performance.now();
    assert.throws(() => lockDirectory(dir, { timing: QUICK, wait: false }), /in use by process 1 on other-container/);
    assert.ok(performance.now() - t < 100);

    // An older version's lock (a pid, never refreshed) is judged by its age as well.
    writeFileSync(path, String(process.pid));
    utimesSync(path, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
    lockDirectory(dir, { timing: QUICK }).release();
  } finally {
    toucher?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Another process refreshing the lock at `path` every 50 ms, as its owner would, with a clock `behindMs` behind this one's. */
async function refresher(path: string, behindMs: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', `const fs = require('fs'); const beat = () => { const t = new Date(Date.now() - ${behindMs}); fs.utimesSync(${JSON.stringify(path)}, t, t); }; beat(); setInterval(beat, 50)`], { stdio: 'ignore' });
  const written = statSync(path).mtimeMs;
  for (let i = 0; i < 500 && statSync(path).mtimeMs === written; i++) await sleep(10);
  return child;
}

test("a lock of another host is watched for its owner's heartbeat, however far behind that host's clock is", { skip: LINUX ? undefined : 'needs /proc' }, async () => {
  const dir = fresh();
  const path = join(dir, 'LOCK');
  writeLock(dir, { ...ELSEWHERE, pid: 4242 });
  const owner = await refresher(path, 15_000);
  try {
    // Before: its time, 15 s behind this host's clock, was older than the grace, and the lock was taken at once.
    assert.throws(() => lockDirectory(dir, { timing: QUICK }), /in use by process 4242 on other-container/);
    assert.throws(() => lockDirectory(dir, { timing: QUICK, wait: false }), /in use by process 4242/);
    await sleep(300);
    assert.throws(() => lockDirectory(dir, { timing: QUICK, wait: false }), /in use by process 4242/, 'refreshed since the claim before');
  } finally {
    owner.kill('SIGKILL');
    await once(owner, 'exit');
  }
  try {
    // Without waiting (a running pipeline claiming again), a lock that looks long dead is taken only by a claim that
    // finds it unchanged a heartbeat and a half after an earlier one.
    writeLock(dir, { ...ELSEWHERE, pid: 4242 }, { ageMs: 3_600_000 });
    assert.throws(() => lockDirectory(dir, { timing: QUICK, wait: false }), /in use by process 4242/);
    await sleep(200);
    lockDirectory(dir, { timing: QUICK, wait: false }).release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the previous release's lock (a pid and its identity, never refreshed) is judged by its pid on this boot, as that release did", { skip: LINUX ? undefined : 'needs /proc' }, async () => {
  const dir = fresh();
  const path = join(dir, 'LOCK');
  const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  const old = (text: string) => {
    writeFileSync(path, text);
    const at = new Date(Date.now() - 3_600_000);
    utimesSync(path, at, at);
  };
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  await once(other, 'spawn');
  try {
    // Written an hour ago by a release that runs on (and never notices a take-over): refused at once.
    old(`${other.pid} ${boot}/${startTicks(other.pid!)}`);
    const t = performance.now();
    // Before: taken, as a lock not refreshed for the grace; both releases then wrote the spool.
    assert.throws(() => lockDirectory(dir, { timing: QUICK }), new RegExp(`in use by process ${other.pid};`));
    assert.ok(performance.now() - t < 100, 'judged by its pid');
    // Its process gone, or its number another process's now: taken at once.
    for (const text of [`999999999 ${boot}/1`, `${other.pid} ${boot}/1`]) {
      old(text);
      const t = performance.now();
      lockDirectory(dir, { timing: QUICK }).release();
      assert.ok(performance.now() - t < 100, text);
    }
    // Of another boot (another host, or before a reboot): judged by its heartbeat, which it never had.
    old(`${other.pid} another-boot/${startTicks(other.pid!)}`);
    lockDirectory(dir, { timing: QUICK }).release();
  } finally {
    other.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an owner whose lock was taken over notices it, stops refreshing it, and leaves it in place', async () => {
  const dir = fresh();
  try {
    const lost: string[] = [];
    const lock = lockDirectory(dir, { timing: QUICK, onLost: (owner) => lost.push(owner) });
    // What a process of another namespace does once this one's heartbeat has stopped for the grace.
    writeLock(dir, { ...ELSEWHERE, pid: 1 });
    const theirs = readFileSync(join(dir, 'LOCK'), 'utf8');
    await sleep(350);
    assert.deepEqual(lost, ['process 1 on other-container'], 'told once, by the heartbeat');
    assert.equal(lock.held(), false);
    lock.release();
    assert.equal(readFileSync(join(dir, 'LOCK'), 'utf8'), theirs);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const TAKER = new URL('./test-lock-taker.ts', import.meta.url);

test('of two processes starting at the same moment exactly one takes the directory, with or without a stale lock', { skip: LINUX ? undefined : 'needs /proc' }, async () => {
  const takers: ChildProcess[] = [];
  const dirs: string[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const child = spawn(process.execPath, moduleArgs(TAKER), { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      takers.push(child);
      assert.equal((await once(child, 'message'))[0], 'ready');
    }
    const outcomes: string[] = [];
    for (let trial = 0; trial < 60; trial++) {
      const dir = mkdtempSync(join(tmpdir(), 'tollgate-lock-race-'));
      dirs.push(dir);
      // Every other trial starts from a lock its owner left behind (a process number no process can have).
      if (trial % 2 === 1) writeLock(dir, { pid: 999_999_999 });
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
