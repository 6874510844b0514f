import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConcurrencyLimit, QueueFullError } from './concurrency-limit.js';

/** Work that ends when told: `release(i)` ends the i-th call started. */
function gatedWork() {
  const releases: (() => void)[] = [];
  let running = 0;
  let most = 0;
  const work = () =>
    new Promise<number>((resolve) => {
      const n = releases.length;
      running++;
      most = Math.max(most, running);
      releases.push(() => {
        running--;
        resolve(n);
      });
    });
  return { work, release: (i: number) => releases[i](), started: () => releases.length, most: () => most };
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

test('at most maxRunning run; the next waits, in arrival order; beyond maxWaiting, calls are refused at once', async () => {
  const limit = new ConcurrencyLimit(2, 3);
  const gate = gatedWork();
  const calls = Array.from({ length: 5 }, () => limit.run(gate.work));
  await assert.rejects(limit.run(gate.work), QueueFullError);
  await settle();
  assert.equal(gate.started(), 2, 'two run, three wait');
  gate.release(1);
  assert.equal(await calls[1], 1);
  await settle();
  assert.equal(gate.started(), 3, 'the first waiting call takes the freed slot');
  for (const i of [0, 2, 3, 4]) {
    gate.release(i);
    await settle();
  }
  assert.deepEqual(await Promise.all(calls), [0, 1, 2, 3, 4]);
  assert.equal(gate.most(), 2);
});

test('a call that fails frees its slot as one that succeeds does', async () => {
  const limit = new ConcurrencyLimit(1, 0);
  await assert.rejects(limit.run(() => Promise.reject(new Error('boom'))), /boom/);
  assert.equal(await limit.run(async () => 'next'), 'next');
});
