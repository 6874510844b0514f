import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { newContext } from '../gateway/data-plane.js';
import type { RequestContext } from '../gateway/context.js';
import { RequestMetrics } from './request-metrics.js';

function finished(metrics: RequestMetrics, fields: Partial<RequestContext>): void {
  const ctx = Object.assign(newContext('POST', '/v1/chat/completions', {}, '127.0.0.1'), { model: 'm', targetModel: 'm', ...fields });
  metrics.started('m');
  metrics.finished(ctx, ctx.errorCode);
}

const sample = async (registry: Registry, name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(await registry.metrics())?.[1] ?? 0);

test('an answer cut after its first bytes is in the TTFT, token and size histograms as its usage record is; a refusal is not', async () => {
  const registry = new Registry();
  const metrics = new RequestMetrics(registry);
  const usage = { inputTokens: 10, outputTokens: 5, cachedTokens: 0 };
  finished(metrics, { status: 200, ttftMs: 20, bytesOut: 300, usage });
  finished(metrics, { status: 200, ttftMs: 30, bytesOut: 200, usage: { ...usage, estimated: true }, errorCode: 'upstream_error' });
  finished(metrics, { status: 200, ttftMs: 40, bytesOut: 100, usage: { ...usage, outputTokens: 3, estimated: true }, errorCode: 'client_closed' });
  finished(metrics, { status: 429, bytesOut: 90, errorCode: 'policies.ratelimit.QuotaViolation' });
  // A model server's own error answer: its first byte came, but it answered nothing.
  finished(metrics, { status: 400, ttftMs: 5, bytesOut: 80, errorCode: '400' });

  assert.equal(await sample(registry, 'inference_objective_request_total'), 5);
  assert.equal(await sample(registry, 'inference_objective_request_ttft_seconds_count'), 3);
  assert.equal(await sample(registry, 'inference_objective_output_tokens_sum'), 13);
  assert.equal(await sample(registry, 'inference_objective_input_tokens_sum'), 30);
  assert.equal(await sample(registry, 'inference_objective_response_sizes_sum'), 600);
  // Time per token only of the whole answer.
  assert.equal(await sample(registry, 'inference_objective_normalized_time_per_output_token_seconds_count'), 1);
});
