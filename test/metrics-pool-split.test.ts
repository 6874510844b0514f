// One model served by two InferencePools through an HTTPRoute (a canary): /metrics counts each request under the
// pool it was routed to (tollgate_pool_*), which the per-pool dashboard panels read. They joined the per-model series
// to tollgate_model_info on the model name, which Prometheus refuses as many-to-many once two pools serve a model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startGateway } from '../src/gateway/gateway.js';
import { json, startStub } from './helpers/stub-upstream.js';
import { manifest } from './helpers/manifests.js';
import { untilEndpoints } from './helpers/pool-ready.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

test('requests for a model split over two pools are counted, with their errors and latency, under the pool each went to', async () => {
  const primary = await startStub();
  const canary = await startStub((r) => json(r.res, 400, { error: { message: 'bad request', type: 'invalid_request_error' } }));
  const gw = await startGateway({
    configPaths: [],
    manifests: [
      manifest('InferencePool', 'primary', { endpoints: [primary.url] }),
      manifest('InferencePool', 'canary', { endpoints: [canary.url] }),
      manifest('InferenceModel', 'm-primary', { modelName: 'm', poolRef: { name: 'primary' } }),
      manifest('InferenceModel', 'm-canary', { modelName: 'm', poolRef: { name: 'canary' } }),
      manifest('HTTPRoute', 'canary', {
        rules: [
          { matches: [{ headers: [{ name: 'x-canary', value: 'yes' }] }], backendRefs: [{ kind: 'InferencePool', name: 'canary' }] },
          { backendRefs: [{ kind: 'InferencePool', name: 'primary' }] },
        ],
      }),
    ],
    ...LOOPBACK,
  });
  try {
    await untilEndpoints(gw);
    const chat = async (headers: Record<string, string>) => {
      const r = await request(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
      });
      await r.body.dump();
      return r.statusCode;
    };
    const statuses = [await chat({}), await chat({}), await chat({}), await chat({ 'x-canary': 'yes' }), await chat({ 'x-canary': 'yes' })];
    assert.deepEqual(statuses, [200, 200, 200, 400, 400]);

    const text = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    const value = (series: string) => Number(text.split('\n').find((l) => l.startsWith(`${series} `))?.split(' ')[1]);
    assert.deepEqual(
      ['primary', 'canary'].map((pool) => [
        value(`tollgate_pool_requests_total{pool="${pool}",model_name="m"}`),
        value(`tollgate_pool_request_errors_total{pool="${pool}",model_name="m"}`),
        value(`tollgate_pool_request_duration_seconds_count{pool="${pool}",model_name="m"}`),
      ]),
      [
        [3, 0, 3],
        [2, 2, 2],
      ],
    );
    // The Inference Extension's series are per model, whichever pool served it.
    assert.equal(value('inference_objective_request_total{model_name="m",target_model_name="m"}'), 5);
  } finally {
    await gw.close();
    await Promise.all([primary.close(), canary.close()]);
  }
});
