import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ctx, deps, endpoint } from '../../../testing.js';
import { LOW_QUEUE_FILTER, lowQueueFilter } from './low-queue-filter.js';

describe(LOW_QUEUE_FILTER, () => {
  const cases: { name: string; threshold?: number; queues: number[]; want: number[] }[] = [
    { name: 'default threshold 128', queues: [0, 127, 128, 500], want: [0, 1] },
    { name: 'configured threshold', threshold: 3, queues: [2, 3, 1], want: [0, 2] },
    { name: 'none below: all kept', threshold: 1, queues: [4, 5], want: [0, 1] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const filter = lowQueueFilter(LOW_QUEUE_FILTER, c.threshold === undefined ? {} : { queueThreshold: c.threshold }, deps());
      const eps = c.queues.map((waiting, i) => endpoint(i, { waiting }));
      assert.deepEqual(filter.filter(ctx(), eps).map((ep) => eps.indexOf(ep)), c.want);
    });
  }

  test('parameters are validated', () => {
    assert.throws(() => lowQueueFilter(LOW_QUEUE_FILTER, { queueThreshold: -1 }, deps()));
  });
});
