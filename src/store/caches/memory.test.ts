import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryCacheStore } from './memory.js';

test('a small answer is kept in memory of its own, not as a slice pinning a shared 8 KiB pool block', () => {
  const store = new MemoryCacheStore();
  // Buffer.from of a short string is a slice of Node's shared pool, as small answers are when they are assembled.
  const pooled = Buffer.from('{"choices":[{"message":{"content":"hi"}}]}');
  assert.ok(pooled.buffer.byteLength > pooled.length, 'the value under test is a pool slice');
  store.set('k', pooled, 60_000);
  const kept = store.get('k')!;
  assert.equal(kept.toString(), pooled.toString());
  // Before: the very slice was kept, and with it the whole pool block (8 KiB for a 43-byte answer).
  assert.equal(kept.buffer.byteLength, kept.length);
});

test('a value that already owns its memory is kept as it is', () => {
  const store = new MemoryCacheStore();
  const own = Buffer.alloc(10_000, 1);
  store.set('k', own, 60_000);
  assert.equal(store.get('k'), own);
});

test('a sweep drops expired entries no read came for, and their bytes; live ones stay', () => {
  let now = 1_000;
  const store = new MemoryCacheStore({ now: () => now });
  store.set('long-lived', Buffer.from('answer'), 600_000);
  const oneEntry = store.bytes;
  for (let i = 0; i < 100; i++) store.set(`one-off-${i}`, Buffer.from('answer'), 60_000);
  now += 60_000;
  store.sweep();
  // Before: all 101 stayed until their own key was read again or the budget was full.
  assert.equal(store.size, 1);
  assert.equal(store.bytes, oneEntry);
  assert.deepEqual(store.get('long-lived'), Buffer.from('answer'));
  void store.close();
});
