import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RetrySlots } from './retry-slots.js';

test("a key's refused callers get slots of their own, one after another from the earliest moment, a rate's slot apart plus slack for callers a little late", () => {
  const slots = new RetrySlots();
  const waits = Array.from({ length: 5 }, () => slots.wait('k', 1_000, 20, 20));
  // Before: every one was told 20 ms plus a random share of 320 ms, and they collided.
  assert.deepEqual(waits, [20, 50, 80, 110, 140]);
  // Another key's callers queue apart.
  assert.equal(slots.wait('other', 1_000, 20, 20), 20);
  // Once the promised slots are past, the rate's own earliest moment is the wait again.
  assert.equal(slots.wait('k', 2_000, 20, 20), 20);
  // A heavier request takes its weight's worth of slots.
  const heavy = new RetrySlots();
  assert.deepEqual([heavy.wait('k', 0, 100, 200), heavy.wait('k', 0, 100, 200)], [100, 350]);
});

test('the keys remembered are bounded: the least recently refused are forgotten first', () => {
  const slots = new RetrySlots(3);
  for (const key of ['a', 'b', 'c', 'd']) slots.wait(key, 0, 10, 10);
  assert.equal(slots.size, 3);
  // 'a' was forgotten: its next caller starts from the rate's earliest moment again.
  assert.equal(slots.wait('a', 0, 10, 10), 10);
  assert.equal(slots.wait('d', 0, 10, 10), 30);
});
