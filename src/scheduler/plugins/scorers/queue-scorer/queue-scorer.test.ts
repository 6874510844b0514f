import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, deps, scores } from '../../../testing.js';
import { QUEUE_SCORER, queueScorer } from './queue-scorer.js';

describe(QUEUE_SCORER, () => {
  const scorer = queueScorer(QUEUE_SCORER, {}, deps());
  const cases: { name: string; queues: number[]; want: number[] }[] = [
    { name: 'min-max scaled', queues: [0, 5, 10], want: [1, 0.5, 0] },
    { name: 'all equal: all 1', queues: [3, 3, 3], want: [1, 1, 1] },
    { name: 'one endpoint', queues: [7], want: [1] },
    { name: 'uneven', queues: [2, 4, 10], want: [1, 0.75, 0] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const eps = c.queues.map((waiting, i) => endpoint(i, { waiting }));
      assert.deepEqual(scores(scorer, eps), c.want);
    });
  }

  test('picks since the last scrape count', () => {
    const a = endpoint(1, { waiting: 0 });
    const b = endpoint(2, { waiting: 1 });
    a.recordPick(1);
    a.recordPick(1);
    assert.deepEqual(scores(scorer, [a, b]), [0, 1]);
  });

  test('rejects parameters it does not know', () => {
    assert.throws(() => queueScorer(QUEUE_SCORER, { x: 1 }, deps()));
  });
});
