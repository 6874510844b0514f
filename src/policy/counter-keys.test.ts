// Counter keys: short identifiers as they are (existing Redis keys keep their names), long ones as a fixed-size digest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryCounterStore } from '../store/counters/memory.js';
import type { SmoothedResult, WindowResult } from '../store/counters/counter-store.js';
import { policyKey, productQuotaKey, productTokenKey } from './counter-keys.js';
import { quota } from './policies/quota/quota.js';
import { spikeArrest } from './policies/spike-arrest/spike-arrest.js';
import { fakeContext, testDeps } from './testing.js';

const KEYS = [
  (id: string) => policyKey('q', 'per-app', id),
  (id: string) => productQuotaKey('gold', id),
  (id: string) => productTokenKey('gold', id),
];

test('an identifier of up to 64 bytes is in the key as it is', () => {
  assert.equal(policyKey('q', 'per-app', 'app-1'), 'apim:q:per-app:app-1');
  assert.equal(productQuotaKey('gold', 'app-1'), 'apim:pq:gold:app-1');
  assert.equal(productTokenKey('gold', ''), 'apim:pt:gold:');
  for (const id of ['a'.repeat(64), 'é'.repeat(32), 'sha256:' + 'f'.repeat(57)]) assert.equal(policyKey('sa', 's', id), `apim:sa:s:${id}`);
});

test('a longer one is its SHA-256: a fixed size, stable, and never the key of another identifier', () => {
  const long = 'x'.repeat(4096);
  assert.equal(policyKey('q', 'per-app', long), 'apim:q:per-app:sha256:9a0a1f067a43b0585fde0cd29e8be0dcf7d8ec98c0f2055cdc7b16c549843023');
  for (const key of KEYS) {
    for (const id of ['a'.repeat(65), 'é'.repeat(33), 'x'.repeat(16 * 1024)]) {
      const k = key(id);
      assert.ok(k.length <= key('').length + 71, k);
      assert.notEqual(k, key(id.slice(1)), 'one character less is another counter');
    }
  }
  // The digest form is longer than any identifier kept as it is, so no short identifier can name a hashed counter.
  const hashed = policyKey('q', 'per-app', long).slice('apim:q:per-app:'.length);
  assert.ok(Buffer.byteLength(hashed) > 64);
  assert.notEqual(policyKey('q', 'per-app', `\ud800${long}`), policyKey('q', 'per-app', `\ud801${long}`), 'lone surrogates are not all U+FFFD');
});

/** A memory store that notes every key it is asked about. */
class KeyNotingStore extends MemoryCounterStore {
  readonly keys: string[] = [];
  override consume(key: string, amount: number, limit: number, windowMs: number, nowMs?: number): Promise<WindowResult> {
    this.keys.push(key);
    return super.consume(key, amount, limit, windowMs, nowMs);
  }
  override consumeSmoothed(key: string, intervalMs: number, burst: number, nowMs?: number, weight?: number): Promise<SmoothedResult> {
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
    for (const p of policies) outcomes.push(await Promise.resolve(p.admit!(fakeContext({ headers: { 'x-user': user } }), {})).then(() => true, () => false));
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
