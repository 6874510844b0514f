import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { PrefixIndex } from './prefix-index.js';

/** Blocks as plain numbers: a "prompt" is the list of its chained block hashes. */
const blocks = (...h: number[]) => Float64Array.from(h);

function learn(index: PrefixIndex<string>, key: string, prompt: Float64Array, capacity = 100) {
  index.match(prompt, prompt.length);
  index.remember(key, capacity);
}

function matches(index: PrefixIndex<string>, prompt: Float64Array, keys: string[]) {
  index.match(prompt, prompt.length);
  return Object.fromEntries(keys.map((k) => [k, index.matched(k)]));
}

describe('PrefixIndex', () => {
  test('greedy longest match from the start, per endpoint', () => {
    const index = new PrefixIndex<string>();
    learn(index, 'A', blocks(1, 2, 3, 4));
    learn(index, 'B', blocks(1, 2, 9));
    learn(index, 'C', blocks(7, 8));
    assert.deepEqual(matches(index, blocks(1, 2, 3, 5), ['A', 'B', 'C', 'D']), { A: 3, B: 2, C: 0, D: 0 });
    assert.deepEqual(matches(index, blocks(1, 2, 9, 4), ['A', 'B']), { A: 2, B: 3 });
    // Block 2 alone, without block 1, is no match: matching starts at the first block.
    assert.deepEqual(matches(index, blocks(5, 2, 3), ['A', 'B']), { A: 0, B: 0 });
  });

  test('a hole stops the match there', () => {
    const index = new PrefixIndex<string>();
    learn(index, 'A', blocks(1));
    learn(index, 'A', blocks(9, 3)); // A holds 1 and 3, not 2
    assert.deepEqual(matches(index, blocks(1, 2, 3), ['A']), { A: 1 });
  });

  test('LRU eviction beyond capacity takes the oldest prompts, tail blocks before head blocks', () => {
    const index = new PrefixIndex<string>();
    learn(index, 'A', blocks(1, 2, 3), 4);
    learn(index, 'A', blocks(10, 11), 4); // 5 blocks > 4: block 3 (tail of the oldest prompt) goes
    assert.equal(index.size('A'), 4);
    assert.deepEqual(matches(index, blocks(1, 2, 3), ['A']), { A: 2 });
    assert.deepEqual(matches(index, blocks(10, 11), ['A']), { A: 2 });
  });

  test('using a prompt again keeps it over older ones', () => {
    const index = new PrefixIndex<string>();
    learn(index, 'A', blocks(1, 2), 4);
    learn(index, 'A', blocks(3, 4), 4);
    learn(index, 'A', blocks(1, 2), 4); // touch 1, 2
    learn(index, 'A', blocks(5, 6), 4); // evicts 3, 4, not 1, 2
    assert.deepEqual(matches(index, blocks(1, 2), ['A']), { A: 2 });
    assert.deepEqual(matches(index, blocks(3, 4), ['A']), { A: 0 });
    assert.deepEqual(matches(index, blocks(5, 6), ['A']), { A: 2 });
  });

  test('capacities are per endpoint', () => {
    const index = new PrefixIndex<string>();
    learn(index, 'A', blocks(1, 2, 3), 2);
    learn(index, 'B', blocks(1, 2, 3), 10);
    assert.deepEqual([index.size('A'), index.size('B')], [2, 3]);
    assert.deepEqual(matches(index, blocks(1, 2, 3), ['A', 'B']), { A: 2, B: 3 });
  });

  test('remove forgets an endpoint and leaves the others', () => {
    const index = new PrefixIndex<string>();
    learn(index, 'A', blocks(1, 2));
    learn(index, 'B', blocks(1, 2));
    index.remove('A');
    assert.deepEqual(matches(index, blocks(1, 2), ['A', 'B']), { A: 0, B: 2 });
    assert.equal(index.size('A'), 0);
    index.remove('missing');
  });

  test('the ring grows past its initial size without losing order', () => {
    const index = new PrefixIndex<string>();
    const many = Float64Array.from({ length: 300 }, (_, i) => i + 1);
    learn(index, 'A', many, 1000);
    assert.equal(index.size('A'), 300);
    learn(index, 'A', blocks(5000, 5001), 300); // evicts the two tail blocks of the long prompt
    assert.deepEqual(matches(index, many, ['A']), { A: 298 });
  });
});
