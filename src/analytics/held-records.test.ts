// The memory bound for records the spool could not take: oldest first, and what does not fit is counted, not kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeldRecords } from './held-records.js';

test('keeps lines in order up to the bound, says how many did not fit, and frees their room once taken', () => {
  const held = new HeldRecords(10);
  assert.equal(held.add(['aaaa', 'bbbb', 'cccc']), 1, 'the third would pass 10 characters');
  assert.equal(held.add(['ddd', 'e']), 2, 'nothing after a line that did not fit is kept, so what is kept stays in order');
  assert.equal(held.count, 2);
  assert.deepEqual(held.peek(10), ['aaaa', 'bbbb']);
  held.take(1);
  assert.equal(held.add(['ffff', 'ggg']), 1, 'the room of what was taken is free again');
  assert.deepEqual(held.peek(2), ['bbbb', 'ffff']);
  assert.equal(held.count, 2);
});
