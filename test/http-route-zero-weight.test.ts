// An HTTPRoute rule whose backendRefs all have weight 0 sends its traffic nowhere (Gateway API; Istio answers 503):
// end to end, its requests get 503 no_healthy_endpoints and reach no model server, where they used to fall through
// to model-name routing and be served by another pool.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startGateway } from '../src/gateway/gateway.js';
import { startStub } from './helpers/stub-upstream.js';
import { manifest, poolAndModel } from './helpers/manifests.js';
import { untilEndpoints } from './helpers/pool-ready.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

test('a rule with every backend at weight 0 answers 503, and requests it does not match are served', async () => {
  const served = await startStub();
  const drained = await startStub();
  const gw = await startGateway({
    configPaths: [],
    manifests: [
      ...poolAndModel([served.url]),
      manifest('InferencePool', 'pool-c', { endpoints: [drained.url] }),
      manifest('HTTPRoute', 'team-b', {
        rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/v1/' }, headers: [{ name: 'x-team', value: 'b' }] }], backendRefs: [{ kind: 'InferencePool', name: 'pool-c', weight: 0 }] }],
      }),
    ],
    ...LOOPBACK,
  });
  after(async () => {
    await gw.close();
    await served.close();
    await drained.close();
  });
  await untilEndpoints(gw);
  const chat = (headers: Record<string, string>) =>
    request(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }) });

  const refused = await chat({ 'x-team': 'b' });
  assert.equal(refused.statusCode, 503);
  const body = (await refused.body.json()) as { error: { code: string; type: string; message: string } };
  assert.deepEqual([body.error.code, body.error.type], ['no_healthy_endpoints', 'server_error']);
  assert.match(body.error.message, /HTTPRoute "team-b"/);

  const other = await chat({});
  assert.equal(other.statusCode, 200);
  await other.body.dump();
  assert.deepEqual([served.requests.length, drained.requests.length], [1, 0]);
});
