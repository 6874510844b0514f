import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flattenJson } from './json-variables.js';

test('leaves become dotted variables, array items by index', () => {
  const set = new Map<string, string>();
  flattenJson({ user: { tier: 'gold', tags: ['a', 'b'] }, n: 1, none: null }, 'c', (k, v) => set.set(k, v));
  assert.deepEqual(Object.fromEntries(set), { 'c.user.tier': 'gold', 'c.user.tags.0': 'a', 'c.user.tags.1': 'b', 'c.n': '1', 'c.none': 'null' });
});

test('the walk stops with its budget of 256 leaves: the rest of a huge answer is not visited', () => {
  // Counted, not timed: each item read of a 500,000-item array (an answer within maxResponseBytes).
  let reads = 0;
  const items = new Proxy(new Array<number>(500_000).fill(0), {
    get(target, key, receiver) {
      if (typeof key === 'string' && /^\d+$/.test(key)) reads++;
      return Reflect.get(target, key, receiver);
    },
  });
  let set = 0;
  flattenJson({ items, after: { deep: 1 } }, 'c', () => set++);
  assert.equal(set, 256);
  assert.ok(reads <= 256, `${reads} items read`);
});
