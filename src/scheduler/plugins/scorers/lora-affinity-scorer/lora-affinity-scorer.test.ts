import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ctx, deps, endpoint, lora, scores } from '../../../testing.js';
import { LORA_AFFINITY_SCORER, loraAffinityScorer } from './lora-affinity-scorer.js';

describe(LORA_AFFINITY_SCORER, () => {
  const scorer = loraAffinityScorer(LORA_AFFINITY_SCORER, {}, deps());
  const adapterCtx = ctx({ targetModel: 'sql' }, { adapter: true });
  const cases: { name: string; lora: ReturnType<typeof lora>; want: number }[] = [
    { name: 'resident', lora: lora(['sql', 'x'], [], 2), want: 1 },
    { name: 'free slot', lora: lora(['x'], [], 2), want: 0.8 },
    { name: 'waiting to load, no free slot', lora: lora(['x'], ['sql'], 2), want: 0.6 },
    { name: 'waiting to load with a free slot counts as free slot', lora: lora([], ['sql'], 2), want: 0.8 },
    { name: 'full, not there', lora: lora(['x', 'y'], [], 2), want: 0 },
    // Current vLLM lists every adapter with unfinished requests in both lists: 2 of 4 slots taken, not 4 (the sum).
    { name: 'adapters in both lists take one slot each', lora: lora(['x', 'y'], ['x', 'y'], 4), want: 0.8 },
    { name: 'one adapter running and waiting, of two slots', lora: lora(['x'], ['x'], 2), want: 0.8 },
    { name: 'full with distinct adapters', lora: lora(['x'], ['y'], 2), want: 0 },
    { name: 'no LoRA support', lora: null, want: 0 },
  ];
  for (const c of cases) {
    test(c.name, () => assert.deepEqual(scores(scorer, [endpoint(1, { lora: c.lora })], adapterCtx), [c.want]));
  }

  test('abstains for base-model requests', () => {
    assert.equal(scores(scorer, [endpoint(1, { lora: lora(['sql'], [], 2) })], ctx({ targetModel: 'base' })), null);
  });
});
