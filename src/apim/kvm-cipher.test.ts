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
  assert.throws(() => cipher.decrypt('plain'), /not a value encrypted under these keys/);
});

test('TOLLGATE_KVM_KEY is 32 bytes in hex or base64; unset means no cipher', () => {
  const key = randomBytes(32);
  assert.equal(KvmCipher.fromEnv({}), null);
  const hex = KvmCipher.fromEnv({ TOLLGATE_KVM_KEY: key.toString('hex') })!;
  const b64 = KvmCipher.fromEnv({ TOLLGATE_KVM_KEY: key.toString('base64') })!;
  assert.equal(b64.decrypt(hex.encrypt('x')), 'x');
  assert.throws(() => KvmCipher.fromEnv({ TOLLGATE_KVM_KEY: 'short' }), /must hold 32 bytes/);
});

test('values written under an earlier key are read with TOLLGATE_KVM_PREVIOUS_KEYS; new ones are written under the current key', () => {
  const [old, older, current] = [randomBytes(32), randomBytes(32), randomBytes(32)];
  const byOld = new KvmCipher(old).encrypt('written long ago');
  const byOlder = new KvmCipher(older).encrypt('older still');
  const ring = KvmCipher.fromEnv({ TOLLGATE_KVM_KEY: current.toString('hex'), TOLLGATE_KVM_PREVIOUS_KEYS: ` ${old.toString('base64')}, ${older.toString('hex')} ` })!;
  assert.deepEqual([ring.decrypt(byOld), ring.decrypt(byOlder)], ['written long ago', 'older still']);
  assert.deepEqual([ring.open(byOld), ring.open(byOlder)], [{ plain: 'written long ago', stale: true }, { plain: 'older still', stale: true }]);
  const fresh = ring.encrypt('new');
  assert.deepEqual(ring.open(fresh), { plain: 'new', stale: false });
  assert.equal(new KvmCipher(current).decrypt(fresh), 'new', 'under the current key');
  assert.throws(() => new KvmCipher(old).decrypt(fresh));
  // Under none of the keys: neither readable nor stale (a re-encryption cannot rewrite it).
  const lost = new KvmCipher(randomBytes(32)).encrypt('x');
  assert.deepEqual([ring.canDecrypt(lost), ring.open(lost)], [false, undefined]);
  assert.throws(() => KvmCipher.fromEnv({ TOLLGATE_KVM_KEY: current.toString('hex'), TOLLGATE_KVM_PREVIOUS_KEYS: 'short' }), /TOLLGATE_KVM_PREVIOUS_KEYS\[0\] must hold 32 bytes/);
  assert.throws(() => KvmCipher.fromEnv({ TOLLGATE_KVM_PREVIOUS_KEYS: old.toString('hex') }), /without TOLLGATE_KVM_KEY/);
});
