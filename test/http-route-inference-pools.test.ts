// HTTPRoutes over InferencePools, end to end: a weighted route across two pools that serve the same model name (the
// Inference Extension's conformance case GatewayWeightedAcrossTwoInferencePools) serves every request from both, and
// a route limited by hostname and header keeps other requests from its pool (they used to reach it by model name).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startGateway } from '../src/gateway/gateway.js';
import { startStub } from './helpers/stub-upstream.js';
import { manifest } from './helpers/manifests.js';
import { untilEndpoints } from './helpers/pool-ready.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

test('a route split over two pools serving one name uses both; a hostname- and header-limited route restricts', async () => {
  const primary = await startStub();
  const canary = await startStub();
  const premium = await startStub();
  const gw = await startGateway({
    configPaths: [],
    manifests: [
      manifest('InferencePool', 'primary', { endpoints: [primary.url] }),
      manifest('InferencePool', 'canary', { endpoints: [canary.url] }),
      manifest('InferencePool', 'premium', { endpoints: [premium.url] }),
      manifest('InferenceModel', 'm-primary', { modelName: 'm', poolRef: { name: 'primary' } }),
      manifest('InferenceModel', 'm-canary', { modelName: 'm', poolRef: { name: 'canary' } }),
      manifest('InferenceModel', 'big', { modelName: 'big', poolRef: { name: 'premium' } }),
      manifest('HTTPRoute', 'split', {
        hostnames: ['chat.example.com'],
        rules: [{ backendRefs: [{ kind: 'InferencePool', name: 'primary', weight: 50 }, { kind: 'InferencePool', name: 'canary', weight: 50 }] }],
      }),
      manifest('HTTPRoute', 'premium-only', {
        hostnames: ['premium.example.com'],
        rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/v1/' }, headers: [{ name: 'x-plan', value: 'gold' }] }], backendRefs: [{ kind: 'InferencePool', name: 'premium' }] }],
      }),
    ],
    ...LOOPBACK,
  });
  after(async () => {
    await gw.close();
    await Promise.all([primary.close(), canary.close(), premium.close()]);
  });
  await untilEndpoints(gw);
  const chat = async (model: string, headers: Record<string, string>) => {
    const r = await request(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
    });
    const body = (await r.body.json()) as { error?: { code: string; message: string } };
    return { status: r.statusCode, code: body.error?.code, message: body.error?.message };
  };

  const statuses = new Map<number, number>();
  for (let i = 0; i < 40; i++) {
    const { status } = await chat('m', { host: 'chat.example.com' });
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
  }
  assert.deepEqual([...statuses], [[200, 40]]);
  // Each pool is drawn at 1/2: one pool missing from 40 draws has a chance of 2^-39.
  assert.ok(primary.requests.length > 0 && canary.requests.length > 0, `primary ${primary.requests.length}, canary ${canary.requests.length}`);
  assert.equal(primary.requests.length + canary.requests.length, 40);

  const models = (await (await request(`${gw.url}/v1/models`)).body.json()) as { data: { id: string }[] };
  assert.deepEqual(models.data.map((m) => m.id).sort(), ['big', 'm']);

  assert.equal((await chat('big', { host: 'premium.example.com', 'x-plan': 'gold' })).status, 200);
  for (const headers of [{ host: 'premium.example.com' }, { host: 'anyone.example.org', 'x-plan': 'gold' }] as Record<string, string>[]) {
    const refused = await chat('big', headers);
    assert.deepEqual([refused.status, refused.code], [404, 'route_not_found'], JSON.stringify(headers));
    assert.match(refused.message!, /the model "big" is served through HTTPRoutes only/);
  }
  // Both pools of "m" are routed: no route, no pool.
  assert.deepEqual(Object.values(await chat('m', { host: 'anyone.example.org' })).slice(0, 2), [404, 'route_not_found']);
  assert.deepEqual([primary.requests.length + canary.requests.length, premium.requests.length], [40, 1]);
});
