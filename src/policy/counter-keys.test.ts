// Counter keys: short identifiers as they are (existing Redis keys keep their names), long ones as a fixed-size digest;
// names escaped and windows last, so no two counters share a key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryCounterStore } from '../store/counters/memory.js';
import type { SmoothedResult, WindowResult } from '../store/counters/counter-store.js';
import { periodKey, policyKeys, productKeys, windowKey } from './counter-keys.js';
import { quota } from './policies/quota/quota.js';
import { spikeArrest } from './policies/spike-arrest/spike-arrest.js';
import { fakeContext, testDeps } from './testing.js';

const perApp = policyKeys('q', 'per-app');
const KEYS = [perApp, (id: string) => productKeys('pq', 'developer.app.id')('gold', id), (id: string) => productKeys('pt', 'developer.app.id')('gold', id)];

test('an identifier of up to 64 bytes is in the key as it is', () => {
  assert.equal(perApp('app-1'), 'apim:q:per-app:app-1');
  assert.equal(productKeys('pq', 'developer.app.id')('gold', 'app-1'), 'apim:pq:gold:developer.app.id:app-1');
  assert.equal(productKeys('pt', 'request.header.x-user')('gold', ''), 'apim:pt:gold:request.header.x-user:');
  for (const id of ['a'.repeat(64), 'é'.repeat(32), 'sha256:' + 'f'.repeat(57)]) assert.equal(policyKeys('sa', 's')(id), `apim:sa:s:${id}`);
});

test('a longer one is its SHA-256: a fixed size, stable, and never the key of another identifier', () => {
  const long = 'x'.repeat(4096);
  assert.equal(perApp(long), 'apim:q:per-app:sha256:9a0a1f067a43b0585fde0cd29e8be0dcf7d8ec98c0f2055cdc7b16c549843023');
  for (const key of KEYS) {
    for (const id of ['a'.repeat(65), 'é'.repeat(33), 'x'.repeat(16 * 1024)]) {
      const k = key(id);
      assert.ok(k.length <= key('').length + 71, k);
      assert.notEqual(k, key(id.slice(1)), 'one character less is another counter');
    }
  }
  // The digest form is longer than any identifier kept as it is, so no short identifier can name a hashed counter.
  const hashed = perApp(long).slice('apim:q:per-app:'.length);
  assert.ok(Buffer.byteLength(hashed) > 64);
  assert.notEqual(perApp(`\ud800${long}`), perApp(`\ud801${long}`), 'lone surrogates are not all U+FFFD');
});

test('names are escaped and windows come last: no two counters share a key, whatever an identifier holds', () => {
  // Before: sharedName `users:budget` named the counter of Quota `users` for identifier `budget:acme`; a product
  // quota per header and the one per app on the same operation set shared a counter when a header value was an app id.
  const names = ['users', 'users:budget', 'users%3Abudget', 'users:budget:acme', 'a'];
  const ids = ['', 'acme', 'budget:acme', 'budget%3Aacme', 'acme:0-60000', 'acme:f60000', 'acme:r60000', 'x'.repeat(100), 'sha256:' + 'f'.repeat(64)];
  const windows = [{ startMs: 0, endMs: 60_000 }, { startMs: 0, endMs: 3_600_000 }];
  const seen = new Map<string, string>();
  const add = (key: string, what: string) => {
    assert.equal(seen.get(key), undefined, `${what} and ${seen.get(key)} share ${key}`);
    seen.set(key, what);
  };
  for (const name of names) {
    for (const id of ids) {
      const base = policyKeys('q', name)(id);
      const what = `Quota ${JSON.stringify(name)} for ${JSON.stringify(id)}`;
      for (const w of windows) add(windowKey(base, w), `${what} in ${w.startMs}-${w.endMs}`);
      for (const period of [60_000, 3_600_000]) {
        add(periodKey(base, 'flexi', period), `${what}, flexi ${period}`);
        add(periodKey(base, 'rollingwindow', period), `${what}, rolling ${period}`);
      }
      for (const kind of ['pq', 'pt'] as const) add(windowKey(productKeys(kind, name)('gold', id), windows[0]), `${kind} per ${JSON.stringify(name)} for ${JSON.stringify(id)}`);
    }
  }
  assert.equal(policyKeys('q', 'users:budget%')('acme'), 'apim:q:users%3Abudget%25:acme');
});

/** A memory store that notes every key it is asked about. */
class KeyNotingStore extends MemoryCounterStore {
  readonly keys: string[] = [];
  override consume(key: string, amount: number, limit: number, windowMs: number, nowMs?: number): WindowResult {
    this.keys.push(key);
    return super.consume(key, amount, limit, windowMs, nowMs);
  }
  override consumeSmoothed(key: string, intervalMs: number, burst: number, nowMs?: number, weight?: number): SmoothedResult {
    this.keys.push(key);
    return super.consumeSmoothed(key, intervalMs, burst, nowMs, weight);
  }
}

test('a Quota and a SpikeArrest keyed by a 4 KiB header keep keys of about 100 bytes, and still count each client apart', async () => {
  const store = new KeyNotingStore();
  const deps = testDeps(store);
  const identifier = { ref: 'request.header.x-user' };
  const policies = [quota('per-user', { allow: 1, interval: 1, timeUnit: 'hour', identifier }, deps), spikeArrest('per-user-spike', { rate: '1pm', identifier }, deps)];
  const admit = async (user: string) => {
    const outcomes: boolean[] = [];
    for (const p of policies) {
      try {
        await p.admit!(fakeContext({ headers: { 'x-user': user } }), {});
        outcomes.push(true);
      } catch {
        outcomes.push(false);
      }
    }
    return outcomes;
  };
  const alice = 'alice-' + 'x'.repeat(4096);
  const bob = 'bob-' + 'x'.repeat(4096);
  assert.deepEqual(await admit(alice), [true, true]);
  assert.deepEqual(await admit(bob), [true, true], 'another client, other counters');
  assert.deepEqual(await admit(alice), [false, false], 'the same client, the same counters');
  assert.ok(store.keys.length >= 6);
  for (const key of store.keys) assert.ok(key.length <= 128, key);
  await store.close();
});
