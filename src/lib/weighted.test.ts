import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WeightedDraw } from './weighted.js';

/** A seeded PRNG (mulberry32) so the statistical test is repeatable. */
function seeded(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('draws follow the weights (chi-square at p = 0.001)', () => {
  const draw = new WeightedDraw([
    { value: 'a', weight: 70 },
    { value: 'b', weight: 20 },
    { value: 'c', weight: 10 },
    { value: 'never', weight: 0 },
  ]);
  const n = 20_000;
  const counts: Record<string, number> = { a: 0, b: 0, c: 0, never: 0 };
  const rand = seeded(42);
  for (let i = 0; i < n; i++) counts[draw.pick(rand)]++;
  assert.equal(counts.never, 0);
  const expected = { a: 0.7 * n, b: 0.2 * n, c: 0.1 * n };
  const chi2 = Object.entries(expected).reduce((s, [k, e]) => s + (counts[k] - e) ** 2 / e, 0);
  // 2 degrees of freedom: the critical value at p = 0.001 is 13.82.
  assert.ok(chi2 < 13.82, `chi-square ${chi2.toFixed(2)} with counts ${JSON.stringify(counts)}`);
});

test('a draw needs a positive weight', () => {
  assert.throws(() => new WeightedDraw([{ value: 'x', weight: 0 }]), /weight > 0/);
});
