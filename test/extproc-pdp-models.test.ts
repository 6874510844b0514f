// GET /v1/models on a policy-decision-point-only ext_proc listener: answered by tollgate as the data plane answers it
// (only the models the key may use; any other is a 404), not passed on to a model server that lists all it serves.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startExtprocServer, type ExtprocServer } from '../src/extproc/server.js';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { silentLogger } from '../src/lib/logger.js';
import { call, createApp, untilKeyKnown, type IssuedApp } from './helpers/apim-admin.js';
import { closeEnvoyClients, envoyExchange } from './helpers/extproc-envoy.js';
import { apiKeyManifests, manifest } from './helpers/manifests.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

let stub: Stub;
let gw: Gateway;
let pdp: ExtprocServer;
let app: IssuedApp;

before(async () => {
  stub = await startStub();
  gw = await startGateway({
    configPaths: [],
    manifests: [
      ...apiKeyManifests('cheap', { llmOperations: { models: ['cheap'] } }),
      manifest('InferencePool', 'pool', { endpoints: [stub.url] }),
      manifest('InferenceModel', 'cheap', { modelName: 'cheap', poolRef: { name: 'pool' } }),
      manifest('InferenceModel', 'acme-secret-lora', { modelName: 'acme-secret-lora', poolRef: { name: 'pool' } }),
    ],
    ...LOOPBACK,
    logger: silentLogger,
  });
  pdp = await startExtprocServer({ dataPlane: gw.dataPlane, logger: silentLogger }, { port: 0, host: '127.0.0.1', roles: ['pdp'] });
  app = await createApp(gw.adminUrl, ['cheap'], 'pdp-models');
  await untilKeyKnown(gw.url, app.key);
});

after(async () => {
  closeEnvoyClients();
  await pdp?.close(100);
  await gw?.close();
  await stub?.close();
});

describe('a policy decision point answers GET /v1/models itself', () => {
  for (const [path, key] of [
    ['/v1/models', true],
    ['/v1/models/cheap', true],
    ['/v1/models/acme-secret-lora', true],
    ['/v1/models', false],
  ] as const) {
    test(`${path} ${key ? 'with' : 'without'} a key: the data plane's answer, nothing forwarded`, async () => {
      const headers: Record<string, string> = key ? { 'x-api-key': app.key } : {};
      const seen = stub.requests.length;
      const r = await envoyExchange(`127.0.0.1:${pdp.port}`, { path, headers, upstream: stub.url });
      const direct = await call(gw.url, 'GET', path, undefined, headers);
      assert.ok(r.local, `answered by tollgate: ${r.body.toString()}`);
      assert.equal(stub.requests.length, seen);
      assert.equal(r.status, direct.status);
      const body = JSON.parse(r.body.toString());
      if (direct.status !== 200) assert.equal(body.error.code, direct.body.error.code);
      else if (direct.body.object === 'list') assert.deepEqual(body.data.map((m: { id: string }) => m.id), direct.body.data.map((m: { id: string }) => m.id));
      else assert.equal(body.id, direct.body.id);
    });
  }

  test('a model the key may not use does not exist, as for the data plane', async () => {
    const r = await envoyExchange(`127.0.0.1:${pdp.port}`, { path: '/v1/models/acme-secret-lora', headers: { 'x-api-key': app.key }, upstream: stub.url });
    assert.equal(r.status, 404);
    assert.equal(JSON.parse(r.body.toString()).error.code, 'model_not_found');
    const list = await envoyExchange(`127.0.0.1:${pdp.port}`, { path: '/v1/models', headers: { 'x-api-key': app.key }, upstream: stub.url });
    assert.deepEqual(JSON.parse(list.body.toString()).data.map((m: { id: string }) => m.id), ['cheap']);
  });
});
