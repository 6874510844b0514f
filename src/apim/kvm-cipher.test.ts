// KVM value encryption: round trips, fresh IVs, wrong keys and tampering refused, key formats from the environment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { KvmCipher } from './kvm-cipher.js';

test('values round-trip, never twice the same ciphertext, never readable under another key', () => {
  const key = randomBytes(32);
  const cipher = new KvmCipher(key);
  const a = cipher.encrypt('s3cret');
  assert.notEqual(a, cipher.encrypt('s3cret'));
  assert.ok(!a.includes('s3cret'));
  assert.equal(cipher.decrypt(a), 's3cret');
  assert.throws(() => new KvmCipher(randomBytes(32)).decrypt(a));
  const [prefix, iv, tag, data] = a.split(':');
  const flipped = Buffer.from(data, 'base64');
  flipped[0] ^= 1;
  assert.throws(() => cipher.decrypt([prefix, iv, tag, flipped.toString('base64')].join(':')));
  assert.throws(() => cipher.decrypt('plain'), /not an encrypted KVM value/);
});

test('TOLLGATE_KVM_KEY is 32 bytes in hex or base64; unset means no cipher', () => {
  const key = randomBytes(32);
  assert.equal(KvmCipher.fromEnv({}), null);
  const hex = KvmCipher.fromEnv({ TOLLGATE_KVM_KEY: key.toString('hex') })!;
  const b64 = KvmCipher.fromEnv({ TOLLGATE_KVM_KEY: key.toString('base64') })!;
  assert.equal(b64.decrypt(hex.encrypt('x')), 'x');
  assert.throws(() => KvmCipher.fromEnv({ TOLLGATE_KVM_KEY: 'short' }), /must hold 32 bytes/);
});
