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

  test('eviction follows use: a prompt used before others goes before them, however often it was used before that', () => {
    // A, A again, B, C, D: at 12 blocks of capacity, D takes the room of the least recently used, A. CLOCK eviction
    // requeued A's blocks (used since they were queued) and evicted B's instead, leaving A whole.
    const index = new PrefixIndex<string>();
    const prompt = (p: number) => Float64Array.from({ length: 4 }, (_, i) => p * 100 + i);
    for (const p of [1, 1, 2, 3, 4]) learn(index, 'E', prompt(p), 12);
    assert.deepEqual(matches(index, prompt(2), ['E']), { E: 4 }, 'B, used after A, is whole');
    assert.deepEqual(matches(index, prompt(1), ['E']), { E: 0 }, 'A, the least recently used, went first');
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

  test('the holdings grow past their initial number without losing order', () => {
    const index = new PrefixIndex<string>();
    const many = Float64Array.from({ length: 300 }, (_, i) => i + 1);
    learn(index, 'A', many, 1000);
    assert.equal(index.size('A'), 300);
    learn(index, 'A', blocks(5000, 5001), 300); // evicts the two tail blocks of the long prompt
    assert.deepEqual(matches(index, many, ['A']), { A: 298 });
  });
});

/** The same index, naively: per endpoint a Map of its held blocks in order of use (a Map keeps insertion order). */
class NaiveIndex {
  servers = new Map<string, Map<number, true>>();
  remember(key: string, prompt: Float64Array, capacity: number): void {
    let held = this.servers.get(key);
    if (!held) this.servers.set(key, (held = new Map()));
    for (let i = prompt.length - 1; i >= 0; i--) {
      held.delete(prompt[i]);
      held.set(prompt[i], true);
    }
    for (const b of held.keys()) {
      if (held.size <= capacity) break;
      held.delete(b);
    }
  }
  matched(key: string, prompt: Float64Array): number {
    const held = this.servers.get(key);
    let n = 0;
    while (held && n < prompt.length && held.has(prompt[n])) n++;
    return n;
  }
}

test('PrefixIndex agrees with a naive model over random prompts whose hashes collide in the table', () => {
  let seed = 7;
  // xorshift32: exact in 32-bit integer arithmetic.
  const rand = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  // Hashes sharing their low 32 bits share the table's slot: long probe runs and shifts on every delete, from the
  // last slot (all ones) wrapping around to the first, where the multiples of 2^32 start theirs.
  const hash = (b: number) => (b % 3 === 0 ? b * 2 ** 32 + 2 ** 32 - 1 : b % 3 === 1 ? b * 2 ** 32 : b * 2654435761);
  const index = new PrefixIndex<string>();
  const naive = new NaiveIndex();
  const keys = ['A', 'B', 'C', 'D'];
  for (let step = 0; step < 20_000; step++) {
    const start = rand(40);
    const prompt = Float64Array.from({ length: 1 + rand(12) }, (_, i) => hash(start * 100 + (rand(4) === 0 ? rand(50) : i) + 1));
    const key = keys[rand(keys.length)];
    if (rand(500) === 0) {
      index.remove(key);
      naive.servers.delete(key);
      continue;
    }
    index.match(prompt, prompt.length);
    for (const k of keys) assert.equal(index.matched(k), naive.matched(k, prompt), `step ${step}, endpoint ${k}`);
    const capacity = 20 + rand(60);
    index.remember(key, capacity);
    naive.remember(key, prompt, capacity);
    assert.equal(index.size(key), naive.servers.get(key)!.size);
  }
});
