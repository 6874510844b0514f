import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../lib/logger.js';
import { MemoryCounterStore } from '../store/counters/memory.js';
import { CounterGuard, type CounterErrorOutcome } from './counter-guard.js';
import { UnavailableCounterStore } from './testing.js';

function guarded(store: ConstructorParameters<typeof CounterGuard>[0], failOpen: boolean) {
  const errors: CounterErrorOutcome[] = [];
  return { errors, guard: new CounterGuard(store, { failOpen, timeoutMs: 200, logger: silentLogger, onError: (o) => errors.push(o) }) };
}

test('every call the store cannot answer is reported with what became of it', async () => {
  const open = guarded(new UnavailableCounterStore(), true);
  assert.equal(await open.guard.call((s) => s.get('k')), undefined);
  await open.guard.settle((s) => s.adjust('k', -3, 60_000));
  assert.deepEqual(open.errors, ['failed_open', 'unsettled']);

  const closed = guarded(new UnavailableCounterStore(), false);
  await assert.rejects(closed.guard.call((s) => s.get('k')), /could not answer/);
  assert.deepEqual(closed.errors, ['refused']);
});

test('a store that answers reports nothing', async () => {
  const { guard, errors } = guarded(new MemoryCounterStore(), false);
  assert.equal((await guard.call((s) => s.consume('k', 1, 10, 60_000)))?.count, 1);
  await guard.settle((s) => s.adjust('k', -1, 60_000));
  assert.deepEqual(errors, []);
});
