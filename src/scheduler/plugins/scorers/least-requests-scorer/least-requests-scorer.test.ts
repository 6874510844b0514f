import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, deps, scores } from '../../../testing.js';
import { LEAST_REQUESTS_SCORER, leastRequestsScorer } from './least-requests-scorer.js';

describe(LEAST_REQUESTS_SCORER, () => {
  const scorer = leastRequestsScorer(LEAST_REQUESTS_SCORER, {}, deps());
  const cases: { name: string; load: [number, number][]; want: number[] }[] = [
    { name: 'waiting + running, min-max scaled', load: [[0, 2], [1, 5], [2, 8]], want: [1, 0.5, 0] },
    { name: 'all equal: all 1', load: [[1, 1], [0, 2]], want: [1, 1] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const eps = c.load.map(([waiting, running], i) => endpoint(i, { waiting, running }));
      assert.deepEqual(scores(scorer, eps), c.want);
    });
  }

  test('in-flight picks count before the next scrape shows them', () => {
    const a = endpoint(1, { running: 1 });
    const b = endpoint(2, { running: 2 });
    a.recordPick(1);
    a.recordPick(1);
    assert.deepEqual(scores(scorer, [a, b]), [0, 1]);
  });
});
