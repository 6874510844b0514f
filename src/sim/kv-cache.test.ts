import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BLOCK_SIZE, KvCache, blocksFor, promptBlockHashes } from './kv-cache.js';

const tokens = (n: number, offset = 0) => Array.from({ length: n }, (_, i) => i + offset);

describe('promptBlockHashes', () => {
  test('hashes full blocks only, chained on the prefix and the model', () => {
    const a = promptBlockHashes('m', tokens(40));
    assert.equal(a.length, 2);
    assert.deepEqual(promptBlockHashes('m', tokens(33)), a);
    assert.notDeepEqual(promptBlockHashes('other', tokens(40)), a);
    // Same second block after a different first block: different hash.
    const b = promptBlockHashes('m', [...tokens(16, 100), ...tokens(16, 16)]);
    assert.notEqual(b[1], a[1]);
  });
});

describe('KvCache', () => {
  test('reuses cached prefix blocks after release', () => {
    const kv = new KvCache(10);
    const hashes = promptBlockHashes('m', tokens(3 * BLOCK_SIZE));
    const first = kv.allocate(hashes, 4)!;
    assert.equal(first.hitBlocks, 0);
    assert.equal(kv.usedBlocks, 4);
    kv.release(first.blocks);
    assert.equal(kv.usedBlocks, 0);
    assert.equal(kv.cachedBlocks, 3);
    const second = kv.allocate(hashes, 4)!;
    assert.equal(second.hitBlocks, 3);
    assert.deepEqual(second.blocks.slice(0, 3), first.blocks.slice(0, 3));
  });

  test('shares blocks between concurrent sequences with the same prefix', () => {
    const kv = new KvCache(10);
    const hashes = promptBlockHashes('m', tokens(2 * BLOCK_SIZE));
    kv.allocate(hashes, 3);
    const other = kv.allocate(hashes, 3)!;
    assert.equal(other.hitBlocks, 2);
    assert.equal(kv.usedBlocks, 4);
  });

  test('refuses without side effects when too few blocks remain, counting the reserve', () => {
    const kv = new KvCache(8);
    kv.allocate([], 5);
    assert.equal(kv.allocate([], 3, 1), null);
    assert.equal(kv.usedBlocks, 5);
    assert.ok(kv.allocate([], 3, 0));
    assert.equal(kv.append(), null);
  });

  test('evicts the least recently used unreferenced blocks first', () => {
    const kv = new KvCache(4);
    const a = promptBlockHashes('m', tokens(2 * BLOCK_SIZE, 0));
    const b = promptBlockHashes('m', tokens(2 * BLOCK_SIZE, 1000));
    kv.release(kv.allocate(a, 2)!.blocks);
    kv.release(kv.allocate(b, 2)!.blocks);
    // Needs two fresh blocks: a's (older) go.
    kv.release(kv.allocate(promptBlockHashes('m', tokens(2 * BLOCK_SIZE, 5000)), 2)!.blocks);
    assert.equal(kv.matchPrefix(a), 0);
    assert.equal(kv.matchPrefix(b), 2);
  });

  test('usage is used blocks over total', () => {
    const kv = new KvCache(16);
    kv.allocate([], blocksFor(40));
    assert.equal(kv.usage, 3 / 16);
  });
});
