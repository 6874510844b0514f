import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ctx, deps, endpoint } from '../../../testing.js';
import { MAX_SCORE_PICKER, maxScorePicker } from './max-score-picker.js';

const order = (totals: number[], random = 0) => {
  const eps = totals.map((_, i) => endpoint(i));
  const picker = maxScorePicker(MAX_SCORE_PICKER, {}, deps({ random: () => random }));
  return picker.pick(ctx(), eps, Float64Array.from(totals)).map((ep) => eps.indexOf(ep));
};

describe(MAX_SCORE_PICKER, () => {
  const cases: { name: string; totals: number[]; random?: number; want: number[] }[] = [
    { name: 'highest first, the rest by descending score', totals: [1, 3, 2, 0.5], want: [1, 2, 0, 3] },
    { name: 'ties: random picks among the best (first)', totals: [5, 1, 5, 5], random: 0, want: [0, 2, 3, 1] },
    { name: 'ties: random picks among the best (middle)', totals: [5, 1, 5, 5], random: 0.5, want: [2, 0, 3, 1] },
    { name: 'ties: random picks among the best (last)', totals: [5, 1, 5, 5], random: 0.99, want: [3, 0, 2, 1] },
    { name: 'one candidate', totals: [0], want: [0] },
  ];
  for (const c of cases) test(c.name, () => assert.deepEqual(order(c.totals, c.random), c.want));

  test('large pools are ordered too', () => {
    const totals = Array.from({ length: 200 }, (_, i) => (i * 37) % 200);
    const got = order(totals);
    for (let i = 1; i < got.length; i++) assert.ok(totals[got[i - 1]] >= totals[got[i]]);
    assert.equal(new Set(got).size, 200);
  });
});
