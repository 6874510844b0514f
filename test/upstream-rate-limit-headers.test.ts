// A model server's own x-ratelimit-* headers (a hosted provider's account budget) are not shown to API-management
// tenants, whose rate-limit headers are their own quotas'; a gateway without API management passes them on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { chatAnswer } from '../src/policy/caching/testing.js';
import { createApp, untilKeyKnown } from './helpers/apim-admin.js';
import { closeEnvoyClients, envoyExchange } from './helpers/extproc-envoy.js';
import { apiKeyManifests, manifest, poolAndModel } from './helpers/manifests.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const PROVIDER_LIMITS = { 'x-ratelimit-limit-tokens': '150000000', 'x-ratelimit-remaining-tokens': '149999990', 'x-ratelimit-limit-requests': '30000' };

function providerStub(): Promise<Stub> {
  return startStub(({ res }) => {
    res.writeHead(200, { 'content-type': 'application/json', ...PROVIDER_LIMITS });
    res.end(JSON.stringify(chatAnswer('hi', 'm')));
  });
}

const chat = (gw: Gateway, headers: Record<string, string> = {}) =>
  fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }) });

test("with API keys, a tenant sees its own quota's rate-limit headers and none of the model server's", async () => {
  const stub = await providerStub();
  const quota = { restOperations: [{ name: 'chat', path: '/v1/chat/completions', methods: ['POST'] }], quota: { limit: 5, interval: 1, timeUnit: 'hour' } };
  const gw = await startGateway({
    configPaths: [],
    manifests: [...apiKeyManifests('p', quota), ...poolAndModel([stub.url])],
    ...LOOPBACK,
    extprocPort: 0,
    extproc: { requestBodyMode: 'BUFFERED' },
  });
  try {
    const app = await createApp(gw.adminUrl, ['p'], 'limits');
    await untilKeyKnown(gw.url, app.key);
    const res = await chat(gw, { 'x-api-key': app.key });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-ratelimit-limit-requests'), '5');
    assert.equal(res.headers.get('x-ratelimit-remaining-requests'), '4');
    assert.equal(res.headers.get('x-ratelimit-limit-tokens'), null);
    assert.equal(res.headers.get('x-ratelimit-remaining-tokens'), null);
    // Over ext_proc, the headers Envoy is told to send are the same.
    const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    const r = await envoyExchange(`127.0.0.1:${gw.extprocPort}`, { path: '/v1/chat/completions', headers: { 'content-type': 'application/json', 'x-api-key': app.key }, body, upstream: stub.url });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-ratelimit-remaining-requests'], '3');
    assert.equal(r.headers['x-ratelimit-limit-requests'], '5');
    assert.equal(r.headers['x-ratelimit-limit-tokens'], undefined);
    assert.equal(r.headers['x-ratelimit-remaining-tokens'], undefined);
  } finally {
    closeEnvoyClients();
    await gw.close();
    await stub.close();
  }
});

test('without API management the model server’s rate-limit headers pass through', async () => {
  const stub = await providerStub();
  const gw = await startGateway({ configPaths: [], manifests: [...poolAndModel([stub.url]), manifest('GatewaySettings', 's', { logging: { level: 'silent' } })], ...LOOPBACK });
  try {
    const res = await chat(gw);
    assert.equal(res.status, 200);
    for (const [name, value] of Object.entries(PROVIDER_LIMITS)) assert.equal(res.headers.get(name), value);
  } finally {
    await gw.close();
    await stub.close();
  }
});
