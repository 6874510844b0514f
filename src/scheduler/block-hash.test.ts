import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { hashBlocks } from './block-hash.js';

const hash = (model: string, text: string, block = 4, max = 100) => {
  const out = new Float64Array(max);
  return [...out.subarray(0, hashBlocks(model, text, block, max, out))];
};

describe('hashBlocks', () => {
  test('full blocks only, up to maxBlocks', () => {
    assert.equal(hash('m', 'abcdefghij').length, 2);
    assert.equal(hash('m', 'abc').length, 0);
    assert.equal(hash('m', 'x'.repeat(400), 4, 10).length, 10);
  });

  test('chained: a shared prefix gives shared hashes up to the first differing block, and different ones after', () => {
    const a = hash('m', 'aaaabbbbccccdddd');
    const b = hash('m', 'aaaabbbbXcccdddd');
    assert.deepEqual(b.slice(0, 2), a.slice(0, 2));
    assert.notEqual(b[2], a[2]);
    assert.notEqual(b[3], a[3]); // the same block text after a difference still hashes differently
  });

  test('the model is part of every hash', () => {
    const a = hash('m1', 'aaaabbbb');
    const b = hash('m2', 'aaaabbbb');
    assert.notEqual(a[0], b[0]);
    assert.notEqual(a[1], b[1]);
  });

  test('equal blocks at different positions hash differently', () => {
    const [h0, h1] = hash('m', 'aaaaaaaa');
    assert.notEqual(h0, h1);
  });

  test('keys are safe integers and spread (no collisions over many similar blocks)', () => {
    const text = Array.from({ length: 5000 }, (_, i) => String(i).padStart(8, '0')).join('');
    const keys = hash('m', text, 8, 5000);
    assert.ok(keys.every(Number.isSafeInteger));
    assert.equal(new Set(keys).size, keys.length);
  });
});
