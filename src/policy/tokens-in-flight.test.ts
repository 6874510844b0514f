// TokensInFlight: settlements the counter store could not take are kept, tried again with backoff, and given up only
// once their window has ended or too many wait.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../lib/logger.js';
import type { HoldId } from '../store/counters/counter-store.js';
import { MemoryCounterStore } from '../store/counters/memory.js';
import { CounterStoreUnavailableError } from '../store/counters/errors.js';
import { CounterGuard, type CounterErrorOutcome } from './counter-guard.js';
import { MONDAY } from './testing.js';
import { TokensInFlight } from './tokens-in-flight.js';

const WINDOW_END = MONDAY + 3_600_000;

/** A memory store that settles nothing while `down` (Redis cut), counting every settlement asked of it. */
class FlakyStore extends MemoryCounterStore {
  down = false;
  settleCalls = 0;
  override settle(key: string, id: HoldId, delta: number): boolean {
    this.settleCalls++;
    if (this.down) throw new CounterStoreUnavailableError('Redis is unavailable: connect ECONNREFUSED');
    return super.settle(key, id, delta);
  }
}

function setUp(opts: ConstructorParameters<typeof TokensInFlight>[0] = {}) {
  const store = new FlakyStore();
  // As Redis is: the guard times its calls (a memory store's never fail, so it would not).
  Object.defineProperty(store, 'inProcess', { value: false });
  const outcomes: CounterErrorOutcome[] = [];
  const guard = new CounterGuard(store, { failOpen: false, timeoutMs: 1000, logger: silentLogger, onError: (o) => outcomes.push(o) });
  const inFlight = new TokensInFlight({ now: () => MONDAY, minDelayMs: 5, maxDelayMs: 5, ...opts });
  let seq = 0;
  /** Reserves `amount` on `key` and returns the settlement moving it by `delta`. */
  const reserve = async (key: string, amount: number, delta: number) => {
    const id = `r${++seq}`;
    await store.reserve(key, amount, 1_000_000, 3_600_000, { id, untilMs: MONDAY + 60_000 }, MONDAY);
    return () => inFlight.settle(guard, (c) => c.settle(key, id, delta), WINDOW_END);
  };
  return { store, outcomes, inFlight, reserve };
}

async function until(what: string, done: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !done(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(done(), what);
}

test('a settlement the store cannot take is kept and tried again until it lands, once', async () => {
  const { store, outcomes, inFlight, reserve } = setUp();
  const settle = await reserve('k', 4096, -4000);
  store.down = true;
  await settle();
  // Before: dropped at once, and the 4,096 reserved stayed on the counter until the window's end.
  assert.equal(await store.get('k', MONDAY), 4096);
  assert.deepEqual(outcomes, ['deferred']);
  await until('tried again while the store is away', () => store.settleCalls >= 3);
  assert.equal(inFlight.size, 1);
  store.down = false;
  await until('settled once the store answers', () => inFlight.size === 0);
  assert.equal(await store.get('k', MONDAY), 96);
  assert.deepEqual(outcomes, ['deferred', 'settled_late']);
});

test('while the store stays away, only the oldest is tried, each time after a longer wait', async () => {
  const { store, inFlight, reserve } = setUp({ minDelayMs: 10, maxDelayMs: 60_000 });
  const settlements = await Promise.all(Array.from({ length: 5 }, (_, i) => reserve(`k${i}`, 100, -100)));
  store.down = true;
  const started = performance.now();
  for (const settle of settlements) await settle();
  const asked = store.settleCalls;
  await until('four tries again', () => store.settleCalls >= asked + 4);
  // 10 + 20 + 40 + 80 ms at least, less up to 1 ms each: libuv starts a timer from the loop's cached whole-ms clock.
  assert.ok(performance.now() - started >= 146, `backed off (${Math.round(performance.now() - started)} ms)`);
  assert.equal(store.settleCalls, asked + 4, 'one try each time, not one per settlement kept');
  assert.equal(inFlight.size, 5);
});

test('a settlement whose window has ended is dropped, without asking the store', async () => {
  let now = MONDAY;
  const { store, outcomes, inFlight, reserve } = setUp({ now: () => now });
  const settle = await reserve('k', 100, -100);
  store.down = true;
  await settle();
  now = WINDOW_END;
  const asked = store.settleCalls;
  await until('dropped', () => inFlight.size === 0);
  assert.equal(store.settleCalls, asked, 'the correction no longer matters: not sent');
  assert.deepEqual(outcomes, ['deferred', 'unsettled']);
});

test('at most maxKept wait; one more is dropped', async () => {
  const { store, outcomes, inFlight, reserve } = setUp({ maxKept: 2, minDelayMs: 60_000, maxDelayMs: 60_000 });
  const settlements = await Promise.all(Array.from({ length: 3 }, (_, i) => reserve(`k${i}`, 100, -100)));
  store.down = true;
  for (const settle of settlements) await settle();
  assert.equal(inFlight.size, 2);
  assert.deepEqual(outcomes, ['deferred', 'deferred', 'unsettled']);
});
