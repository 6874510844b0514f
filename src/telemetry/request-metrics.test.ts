import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { newContext } from '../gateway/data-plane.js';
import type { RequestContext } from '../gateway/context.js';
import { RequestMetrics } from './request-metrics.js';
import { DEFAULT_SETTINGS } from '../config/settings.js';
import { loadConfig } from '../config/load.js';
import { manifest } from '../../test/helpers/manifests.js';

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

test('a request lasting nearly the default response timeout (10 min) falls in a finite latency bucket, not only in +Inf', async () => {
  const registry = new Registry();
  const metrics = new RequestMetrics(registry);
  const seconds = DEFAULT_SETTINGS.upstream.responseTimeout / 1000;
  finished(metrics, { status: 200, start: performance.now() - (seconds - 1) * 1000 });
  const buckets = [...(await registry.metrics()).matchAll(/^inference_objective_request_duration_seconds_bucket\{[^}]*le="([^"]+)"\} (\S+)$/gm)];
  const first = buckets.find(([, , count]) => Number(count) === 1)![1];
  assert.notEqual(first, '+Inf');
  assert.ok(Number(first) >= seconds - 1, `first bucket holding it: ${first}`);
});

test('the pool series count each request under the pool it was routed to, with a zero error series from the first request', async () => {
  const registry = new Registry();
  const metrics = new RequestMetrics(registry);
  const config = loadConfig([], [
    manifest('InferencePool', 'primary', { endpoints: ['http://127.0.0.1:1'] }),
    manifest('InferencePool', 'canary', { endpoints: ['http://127.0.0.1:2'] }),
    manifest('InferenceModel', 'm-primary', { modelName: 'm', poolRef: { name: 'primary' } }),
    manifest('InferenceModel', 'm-canary', { modelName: 'm', poolRef: { name: 'canary' } }),
  ]);
  const [primary, canary] = ['primary', 'canary'].map((pool) => config.models.get('m')!.find((mc) => mc.pool.name === pool)!);
  finished(metrics, { status: 200, modelConfig: primary });
  finished(metrics, { status: 200, modelConfig: primary });
  finished(metrics, { status: 503, modelConfig: canary, errorCode: 'upstream_error' });
  const text = await registry.metrics();
  const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
  assert.equal(value('tollgate_pool_requests_total{pool="primary",model_name="m"}'), 2);
  assert.equal(value('tollgate_pool_requests_total{pool="canary",model_name="m"}'), 1);
  assert.equal(value('tollgate_pool_request_errors_total{pool="primary",model_name="m"}'), 0);
  assert.equal(value('tollgate_pool_request_errors_total{pool="canary",model_name="m"}'), 1);
  assert.equal(value('tollgate_pool_request_duration_seconds_count{pool="primary",model_name="m"}'), 2);
  assert.equal(value('tollgate_pool_request_duration_seconds_count{pool="canary",model_name="m"}'), 1);
  // The Inference Extension's series keep their labels: the model's requests, whichever pool served them.
  assert.equal(value('inference_objective_request_total{model_name="m",target_model_name="m"}'), 3);
});

test('retain drops the series of the pools, models and target models a configuration no longer serves, and keeps the others counting', async () => {
  const registry = new Registry();
  const metrics = new RequestMetrics(registry);
  const pools = [manifest('InferencePool', 'primary', { endpoints: ['http://127.0.0.1:1'] }), manifest('InferencePool', 'canary', { endpoints: ['http://127.0.0.1:2'] })];
  const m = [manifest('InferenceModel', 'm-primary', { modelName: 'm', poolRef: { name: 'primary' } }), manifest('InferenceModel', 'm-canary', { modelName: 'm', poolRef: { name: 'canary' } })];
  const old = manifest('InferenceModel', 'old', { modelName: 'old', poolRef: { name: 'primary' }, targetModels: [{ name: 'old-v1', weight: 1 }] });
  const before = loadConfig([], [...pools, ...m, old]);
  const modelConfig = (config: typeof before, model: string, pool: string) => config.models.get(model)!.find((mc) => mc.pool.name === pool)!;
  finished(metrics, { status: 200, modelConfig: modelConfig(before, 'm', 'primary') });
  finished(metrics, { status: 503, errorCode: 'upstream_error', modelConfig: modelConfig(before, 'm', 'canary') });
  const ctx = Object.assign(newContext('POST', '/v1/chat/completions', {}, '127.0.0.1'), { model: 'old', targetModel: 'old-v1', status: 500, modelConfig: modelConfig(before, 'old', 'primary') });
  metrics.started('old');
  metrics.finished(ctx, 'upstream_error');

  const after = loadConfig([], [pools[0], m[0]]);
  metrics.retain(after);
  finished(metrics, { status: 200, modelConfig: modelConfig(after, 'm', 'primary') });
  const text = await registry.metrics();
  assert.doesNotMatch(text, /"canary"|"old"|"old-v1"/, 'nothing of the removed pool, model and target model');
  assert.match(text, /^tollgate_pool_requests_total\{pool="primary",model_name="m"\} 2$/m, 'the series kept go on counting');
  assert.match(text, /^inference_objective_request_total\{model_name="m",target_model_name="m"\} 3$/m, 'served by a pool still configured');
  assert.match(text, /^inference_objective_running_requests\{model_name="m"\} 0$/m);
});
