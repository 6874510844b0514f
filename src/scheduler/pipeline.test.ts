import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Pipeline } from './pipeline.js';
import type { Filter, Plugin, Scorer } from './plugin-types.js';
import { maxScorePicker } from './plugins/pickers/max-score-picker/max-score-picker.js';
import { ctx, deps, endpoint } from './testing.js';
import type { EndpointState } from './endpoint-state.js';

const fixed = (name: string, values: number[], abstain = false): Scorer => ({
  type: 'fixed',
  name,
  score(_c, candidates, out) {
    candidates.forEach((_, i) => (out[i] = values[i]));
    return !abstain;
  },
});

const dropAll: Filter = { type: 'drop', name: 'drop', filter: () => [] };

function build(scorers: { scorer: Scorer; weight: number }[], filters: Filter[] = [], timed: string[] = []) {
  return new Pipeline({ filters, scorers, picker: maxScorePicker('max-score-picker', {}, deps()) }, (p: Plugin) => (s) => {
    assert.ok(s >= 0);
    timed.push(p.name);
  });
}

const indexes = (eps: EndpointState[], ordered: EndpointState[] | null) => ordered?.map((ep) => eps.indexOf(ep));

describe('Pipeline', () => {
  test('clamps scores to [0,1], applies weights, orders by total', () => {
    const eps = [endpoint(1), endpoint(2), endpoint(3)];
    const p = build([
      { scorer: fixed('a', [2, 0.5, -1]), weight: 2 },
      { scorer: fixed('b', [0, NaN, 1]), weight: 3 },
    ]);
    // totals: 2·1 + 3·0 = 2;  2·0.5 + 3·0 = 1;  2·0 + 3·1 = 3
    assert.deepEqual(indexes(eps, p.run(ctx(), eps)), [2, 0, 1]);
    assert.deepEqual([...eps[0].lastScores], [1, 0]);
    assert.deepEqual([...eps[1].lastScores], [0.5, 0]);
    assert.deepEqual(eps.map((ep) => ep.lastTotal), [2, 1, 3]);
    assert.deepEqual(p.scorerNames, ['a', 'b']);
  });

  test('an abstaining scorer adds nothing and shows NaN', () => {
    const eps = [endpoint(1), endpoint(2)];
    const p = build([
      { scorer: fixed('a', [0, 1]), weight: 1 },
      { scorer: fixed('b', [1, 0], true), weight: 10 },
    ]);
    assert.deepEqual(indexes(eps, p.run(ctx(), eps)), [1, 0]);
    assert.ok(Number.isNaN(eps[0].lastScores[1]));
  });

  test('stops when a filter leaves nothing: later plugins do not run', () => {
    const eps = [endpoint(1)];
    let scored = false;
    const spy: Scorer = { type: 'spy', name: 'spy', score: () => (scored = true) };
    const timed: string[] = [];
    assert.equal(build([{ scorer: spy, weight: 1 }], [dropAll], timed).run(ctx(), eps), null);
    assert.equal(scored, false);
    assert.deepEqual(timed, ['drop']);
  });

  test('times every plugin that ran, once per decision, and calls preRequest with the choice', () => {
    const eps = [endpoint(1), endpoint(2)];
    const chosen: EndpointState[] = [];
    const hooked: Scorer = { ...fixed('hooked', [0, 1]), preRequest: (_c, ep) => void chosen.push(ep) };
    const timed: string[] = [];
    const keep: Filter = { type: 'keep', name: 'keep', filter: (_c, c) => c };
    build([{ scorer: hooked, weight: 1 }], [keep], timed).run(ctx(), eps);
    assert.deepEqual(chosen, [eps[1]]);
    assert.deepEqual(timed.sort(), ['hooked', 'keep', 'max-score-picker']);
  });

  test('grows its scratch space for larger pools', () => {
    const eps = Array.from({ length: 40 }, (_, i) => endpoint(i));
    const values = eps.map((_, i) => i / 40);
    assert.equal(build([{ scorer: fixed('a', values), weight: 1 }]).run(ctx(), eps)![0], eps[39]);
  });

  test('forget reaches every plugin that keeps state', () => {
    const forgotten: string[] = [];
    const s: Scorer = { ...fixed('a', []), forget: (ep) => void forgotten.push(ep.address) };
    build([{ scorer: s, weight: 1 }]).forget(endpoint(7));
    assert.deepEqual(forgotten, ['10.0.0.7:8000']);
  });
});
