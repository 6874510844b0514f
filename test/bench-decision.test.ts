import { test } from 'node:test';
import assert from 'node:assert/strict';
import { benchDecision } from '../bench/decision.js';

test('benchDecision measures decisions on a populated 64-endpoint pool', async () => {
  const r = await benchDecision({ endpoints: 64, iterations: 300, warmup: 100 });
  assert.equal(r.endpoints, 64);
  assert.equal(r.iterations, 300);
  assert.ok(r.p50Us > 0 && r.p50Us <= r.p90Us && r.p90Us <= r.p99Us, JSON.stringify(r));
  assert.ok(r.meanUs > 0);
});
