import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { endpoint, deps, scores } from '../../../testing.js';
import { KV_CACHE_UTILIZATION_SCORER, kvCacheUtilizationScorer } from './kv-cache-utilization-scorer.js';

describe(KV_CACHE_UTILIZATION_SCORER, () => {
  const scorer = kvCacheUtilizationScorer(KV_CACHE_UTILIZATION_SCORER, {}, deps());
  const cases: { kv: number[]; want: number[] }[] = [
    { kv: [0, 0.25, 1], want: [1, 0.75, 0] },
    { kv: [0.5], want: [0.5] },
  ];
  for (const c of cases) {
    test(`1 − KV for ${c.kv.join(', ')}`, () => {
      assert.deepEqual(scores(scorer, c.kv.map((kvCacheUsage, i) => endpoint(i, { kvCacheUsage }))), c.want);
    });
  }

  test('prompts sent since the scrape count when the cache size is known', () => {
    const ep = endpoint(1, { kvCacheUsage: 0.5, blockSize: 16, numGpuBlocks: 100 });
    ep.recordPick(400); // a quarter of 1600 tokens
    assert.deepEqual(scores(scorer, [ep]), [0.25]);
  });
});
