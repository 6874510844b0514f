import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ctx, deps, endpoint, lora } from '../../../testing.js';
import { LORA_AFFINITY_FILTER, loraAffinityFilter } from './lora-affinity-filter.js';

describe(LORA_AFFINITY_FILTER, () => {
  const filter = loraAffinityFilter(LORA_AFFINITY_FILTER, {}, deps());
  const adapter = ctx({ targetModel: 'sql' }, { adapter: true });
  const cases: { name: string; loras: ReturnType<typeof lora>[]; want: number[] }[] = [
    { name: 'holding or loading it', loras: [lora(['sql'], [], 2), lora([], ['sql'], 2), lora([], [], 2)], want: [0, 1] },
    { name: 'else a free slot', loras: [lora(['a', 'b'], [], 2), lora(['a'], [], 2), null], want: [1] },
    { name: 'else all', loras: [lora(['a', 'b'], [], 2), null], want: [0, 1] },
    // An adapter listed as running and waiting (current vLLM lists each with unfinished requests in both) takes one slot.
    { name: 'a slot is free when the lists share their adapters', loras: [lora(['a', 'b'], ['a', 'b'], 4), lora(['a', 'b'], ['c', 'd'], 4)], want: [0] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const eps = c.loras.map((l, i) => endpoint(i, { lora: l }));
      assert.deepEqual(filter.filter(adapter, eps).map((ep) => eps.indexOf(ep)), c.want);
    });
  }

  test('base-model requests pass untouched', () => {
    const eps = [endpoint(1, { lora: lora(['sql'], [], 1) }), endpoint(2)];
    assert.equal(filter.filter(ctx(), eps), eps);
  });
});
