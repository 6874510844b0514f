import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryVectorIndex } from './memory.js';

const unit = (i: number) => {
  const v = new Float32Array(4);
  v[i % 4] = 1;
  return v;
};

test('a sweep drops expired entries of scopes no search came back to, and the scopes it empties', () => {
  let now = 1_000;
  const index = new MemoryVectorIndex({ now: () => now });
  for (let i = 0; i < 50; i++) index.add(`scope-${i}`, 'k', unit(i), Buffer.from('answer'), 60_000);
  index.add('kept', 'k', unit(0), Buffer.from('answer'), 600_000);
  now += 60_000;
  index.sweep();
  // Before: every scope stayed, with its expired answer, until a search of it or the byte budget.
  assert.equal(index.scopes, 1);
  assert.equal(index.search('kept', unit(0), 0.9)?.value.toString(), 'answer');
  assert.ok(index.bytes > 0 && index.bytes < 200, `${index.bytes} bytes: one entry's`);
  void index.close();
});
