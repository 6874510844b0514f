import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ctx, deps, endpoint } from '../../../testing.js';
import { ROUND_ROBIN_PICKER, roundRobinPicker } from './round-robin-picker.js';

describe(ROUND_ROBIN_PICKER, () => {
  test('rotates through the candidates, fallbacks in rotation order, ignoring scores', () => {
    const eps = [endpoint(1), endpoint(2), endpoint(3)];
    const picker = roundRobinPicker(ROUND_ROBIN_PICKER, {}, deps());
    const totals = Float64Array.from([0, 9, 0]);
    const orders = Array.from({ length: 4 }, () => picker.pick(ctx(), eps, totals).map((ep) => eps.indexOf(ep)));
    assert.deepEqual(orders, [
      [0, 1, 2],
      [1, 2, 0],
      [2, 0, 1],
      [0, 1, 2],
    ]);
  });

  test('a shrinking candidate list stays in range', () => {
    const eps = [endpoint(1), endpoint(2), endpoint(3)];
    const picker = roundRobinPicker(ROUND_ROBIN_PICKER, {}, deps());
    picker.pick(ctx(), eps, new Float64Array(3));
    picker.pick(ctx(), eps, new Float64Array(3));
    const two = eps.slice(0, 2);
    assert.deepEqual(picker.pick(ctx(), two, new Float64Array(2)).map((ep) => eps.indexOf(ep)), [0, 1]);
    assert.deepEqual(picker.pick(ctx(), two, new Float64Array(2)).map((ep) => eps.indexOf(ep)), [1, 0]);
  });

  test('instances keep separate counters (one per pool profile)', () => {
    const eps = [endpoint(1), endpoint(2)];
    const a = roundRobinPicker(ROUND_ROBIN_PICKER, {}, deps());
    const b = roundRobinPicker(ROUND_ROBIN_PICKER, {}, deps());
    a.pick(ctx(), eps, new Float64Array(2));
    assert.equal(b.pick(ctx(), eps, new Float64Array(2))[0], eps[0]);
  });

  test('rejects unknown params', () => {
    assert.throws(() => roundRobinPicker(ROUND_ROBIN_PICKER, { x: 1 }, deps()));
  });
});
