import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../lib/logger.js';
import type { CounterStore } from '../store/counters/counter-store.js';
import { MemoryCounterStore } from '../store/counters/memory.js';
import { CounterGuard, type CounterErrorOutcome } from './counter-guard.js';
import { UnavailableCounterStore } from './testing.js';

function guarded(store: ConstructorParameters<typeof CounterGuard>[0], failOpen: boolean) {
  const errors: CounterErrorOutcome[] = [];
  return { errors, guard: new CounterGuard(store, { failOpen, timeoutMs: 200, logger: silentLogger, onError: (o) => errors.push(o) }) };
}

test('every call the store cannot answer is reported with what became of it; a settlement is left to its caller', async () => {
  const open = guarded(new UnavailableCounterStore(), true);
  assert.equal(await open.guard.call((s) => s.get('k')), undefined);
  assert.equal(await open.guard.settle((s) => s.settle('k', 'id', -3)), false, 'not taken: for the caller to keep');
  assert.deepEqual(open.errors, ['failed_open']);
  open.guard.countSettlement('deferred');
  assert.deepEqual(open.errors, ['failed_open', 'deferred']);

  const closed = guarded(new UnavailableCounterStore(), false);
  await assert.rejects(async () => closed.guard.call((s) => s.get('k')), /could not answer/);
  assert.deepEqual(closed.errors, ['refused']);
});

test('a store in this process answers through the guard as it does, with no promise', () => {
  const { guard } = guarded(new MemoryCounterStore(), false);
  const r = guard.call((s) => s.consume('k', 1, 10, 60_000));
  assert.ok(!(r instanceof Promise));
  assert.equal(r?.count, 1);
  assert.equal(guard.settle((s) => s.adjust('k', -1, 60_000)), true);
  const [a, b] = [guard.holdId(), guard.holdId()];
  assert.ok(typeof a === 'number' && a !== b, 'its reservations are numbered');
  assert.match(String(new CounterGuard(new UnavailableCounterStore(), { failOpen: true, timeoutMs: 200, logger: silentLogger }).holdId()), /^[0-9a-f-]{36}$/, 'a shared store\'s are UUIDs');
});

test('a store that answers reports nothing', async () => {
  const { guard, errors } = guarded(new MemoryCounterStore(), false);
  assert.equal((await guard.call((s) => s.consume('k', 1, 10, 60_000)))?.count, 1);
  assert.equal(await guard.settle((s) => s.adjust('k', -1, 60_000)), true);
  assert.deepEqual(errors, []);
});

test('during an outage calls fail at once until the store is tried again, one timeout later; its first answer ends the outage', async () => {
  let now = 1_000_000;
  let asked = 0;
  let answering = false;
  // A store that hangs (a partition) until told to answer.
  const store: CounterStore = Object.assign(new MemoryCounterStore(), { inProcess: false });
  const get = store.get.bind(store);
  store.get = (key: string) => {
    asked++;
    return answering ? get(key) : new Promise<number>(() => {});
  };
  const errors: CounterErrorOutcome[] = [];
  const guard = new CounterGuard(store, { failOpen: true, timeoutMs: 30, logger: silentLogger, onError: (o) => errors.push(o), now: () => now });
  assert.equal(await guard.call((s) => s.get('k')), undefined, 'the first call waits out the timeout and fails open');
  assert.equal(asked, 1);
  for (let i = 0; i < 5; i++) assert.equal(await guard.call((s) => s.get('k')), undefined);
  assert.equal(asked, 1, 'the next calls of the outage do not wait for the store at all');
  assert.deepEqual(errors, Array(6).fill('failed_open'));
  now += 30;
  answering = true;
  assert.equal(await guard.call((s) => s.get('k')), 0, 'one timeout later the store is asked again');
  assert.equal(await guard.call((s) => s.get('k')), 0);
  assert.equal(asked, 3);
});
