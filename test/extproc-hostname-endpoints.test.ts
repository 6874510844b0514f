// Pool endpoints and HTTPRoute URL backends written with a host name (localhost here; a Service's DNS name or a
// docker-compose service in use): as Envoy's endpoint picker tollgate gives their destination as ip:port, which Envoy
// can route to, and matches a subset hint naming them by IP. The HTTP data plane connects to them by name.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { call } from './helpers/apim-admin.js';
import { closeEnvoyClients, envoyExchange } from './helpers/extproc-envoy.js';
import { manifest } from './helpers/manifests.js';
import { untilEndpoints } from './helpers/pool-ready.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

let server: Stub;
let other: Stub;
let gw: Gateway;
const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
const headers = { 'content-type': 'application/json' };

before(async () => {
  [server, other] = [await startStub(), await startStub()];
  gw = await startGateway({
    configPaths: [],
    manifests: [
      manifest('InferencePool', 'pool', { endpoints: [`http://localhost:${server.port}`] }),
      manifest('InferenceModel', 'm', { modelName: 'm', poolRef: { name: 'pool' } }),
      manifest('HTTPRoute', 'other', { rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/other' } }], backendRefs: [{ url: `http://localhost:${other.port}`, weight: 1 }] }] }),
      manifest('GatewaySettings', 'settings', { logging: { level: 'silent' } }),
    ],
    ...LOOPBACK,
    extprocPort: 0,
    extproc: { roles: ['epp'] },
  });
  await untilEndpoints(gw);
});

after(async () => {
  closeEnvoyClients();
  await gw.close();
  await Promise.all([server.close(), other.close()]);
});

test('a pool endpoint named by host: the destination is its ip:port, and a subset hint naming that IP picks it', async () => {
  const extproc = `127.0.0.1:${gw.extprocPort}`;
  const plain = await envoyExchange(extproc, { path: '/v1/chat/completions', body, headers });
  // Before: localhost:<port>, which Envoy's original-destination routing cannot use.
  assert.equal(plain.destination, `127.0.0.1:${server.port}`);
  assert.equal(plain.metadataDestination, `127.0.0.1:${server.port}`);
  assert.equal(plain.status, 200);

  // Before: an immediate 503 (none of the endpoints of the subset hint is available).
  const hinted = await envoyExchange(extproc, { path: '/v1/chat/completions', body, headers, subset: [`127.0.0.1:${server.port}`] });
  assert.equal(hinted.local, false, hinted.body.toString());
  assert.equal(hinted.status, 200);
  assert.equal(hinted.destination, `127.0.0.1:${server.port}`);
  assert.equal(gw.picker.view('pool')!.endpoints[0].address, `127.0.0.1:${server.port}`, 'the fleet view says the same');
});

test('an HTTPRoute URL backend named by host: its destination is ip:port too', async () => {
  const routed = await envoyExchange(`127.0.0.1:${gw.extprocPort}`, { path: '/other/anything', body, headers });
  assert.equal(routed.destination, `127.0.0.1:${other.port}`);
  assert.equal(routed.status, 200);
});

test('the HTTP data plane reaches the same endpoint by its name', async () => {
  const before = server.requests.length;
  const a = await call(gw.url, 'POST', '/v1/chat/completions', JSON.parse(body));
  assert.equal(a.status, 200);
  assert.equal(server.requests.length, before + 1);
});
