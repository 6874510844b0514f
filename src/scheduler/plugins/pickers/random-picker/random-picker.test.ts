import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ctx, deps, endpoint } from '../../../testing.js';
import { RANDOM_PICKER, randomPicker } from './random-picker.js';

describe(RANDOM_PICKER, () => {
  test('a shuffled order of every candidate, ignoring scores', () => {
    const eps = [endpoint(1), endpoint(2), endpoint(3)];
    const picker = randomPicker(RANDOM_PICKER, {}, deps({ random: () => 0 }));
    const got = picker.pick(ctx(), eps, Float64Array.from([9, 0, 0]));
    // random() = 0 swaps each position, from the last, with the first: [0,1,2] → [2,1,0] → [1,2,0].
    assert.deepEqual(got.map((ep) => eps.indexOf(ep)), [1, 2, 0]);
    assert.deepEqual(new Set(got), new Set(eps));
  });

  test('every endpoint gets chosen with a varying random', () => {
    const eps = [endpoint(1), endpoint(2), endpoint(3)];
    let x = 0;
    const picker = randomPicker(RANDOM_PICKER, {}, deps({ random: () => (x = (x + 0.37) % 1) }));
    const first = new Set(Array.from({ length: 30 }, () => picker.pick(ctx(), eps, new Float64Array(3))[0]));
    assert.equal(first.size, 3);
  });
});
