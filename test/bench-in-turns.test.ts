import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inTurns, median, medianRatio, spread } from '../bench/in-turns.js';

test('in turns: every contender once per round, each round starting one further along and every other one backwards; results in round order', async () => {
  const order: string[] = [];
  const out = await inTurns(['a', 'b', 'c'], 3, async (c, round) => {
    order.push(`${c}${round}`);
    return `${c}${round}`;
  });
  assert.deepEqual(order, ['a0', 'b0', 'c0', 'b1', 'a1', 'c1', 'c2', 'a2', 'b2']);
  assert.deepEqual(out, [['a0', 'a1', 'a2'], ['b0', 'b1', 'b2'], ['c0', 'c1', 'c2']]);
});

test('median and median of per-round ratios: a round where the machine slowed down for both does not move the ratio', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([5]), 5);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  // Round 2 ran at a fifth of the speed for both contenders: per round a is half of b, and the ratio says so; the
  // ratio of the medians (40 / 100) would not.
  assert.equal(medianRatio([50, 10, 40], [100, 20, 100]), 0.5);
  assert.equal(medianRatio([90, 40, 60], [100, 100, 100]), 0.6);
  assert.equal(spread([10_207, 4_565, 14_201]).toFixed(2), '3.11');
  assert.equal(spread([5, 5]), 1);
});
