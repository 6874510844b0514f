// Key helpers: formats, uniform base62, hashing and constant-time comparison.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { API_KEY_PATTERN, generateApiKey, generateKeyId, generateSecret, hashKey, randomBase62, safeEqual, verifySecret } from './keys.js';

test('formats', () => {
  assert.match(generateApiKey(), API_KEY_PATTERN);
  assert.match(generateSecret(), /^tgs_[0-9A-Za-z]{40}$/);
  assert.match(generateKeyId(), /^key_[0-9A-Za-z]{16}$/);
  assert.equal(randomBase62(0), '');
  assert.notEqual(generateApiKey(), generateApiKey());
});

test('base62 characters are uniform (no modulo bias)', () => {
  const sample = randomBase62(620_000);
  const counts = new Map<string, number>();
  for (const c of sample) counts.set(c, (counts.get(c) ?? 0) + 1);
  assert.equal(counts.size, 62);
  // Expected 10 000 each. With `byte % 62` and no rejection, '0'..'7' would get 5/4 of the others' share (~12 400).
  const chiSquare = [...counts.values()].reduce((sum, n) => sum + (n - 10_000) ** 2 / 10_000, 0);
  assert.ok(chiSquare < 120, `chi-square ${chiSquare.toFixed(1)} over 61 degrees of freedom`);
});

test('hashKey is SHA-256 hex', () => {
  assert.equal(hashKey('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('safeEqual and verifySecret', () => {
  assert.ok(safeEqual('same', 'same'));
  assert.ok(!safeEqual('same', 'Same'));
  assert.ok(!safeEqual('short', 'longer value'));
  const secret = generateSecret();
  assert.ok(verifySecret(secret, hashKey(secret)));
  assert.ok(!verifySecret(`${secret}x`, hashKey(secret)));
});
