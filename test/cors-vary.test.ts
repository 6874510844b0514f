// CORS and HTTP caches through a real gateway: every answer a policy with listed origins shapes varies on Origin
// (the allowed origin's, another's, one without Origin, a fault), added to the model server's own Vary rather than
// replacing it; the model server's own CORS headers (vLLM allows every origin) never reach the client, over HTTP or
// ext_proc; and the credentialed wildcard is refused when the configuration loads.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { silentLogger } from '../src/lib/logger.js';
import { closeEnvoyClients, envoyExchange } from './helpers/extproc-envoy.js';
import { manifest, poolAndModel } from './helpers/manifests.js';
import { json, startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const ORIGIN = 'https://app.example';
/** What vLLM's CORSMiddleware answers any request with an Origin with, by default. */
const UPSTREAM_CORS = { 'access-control-allow-origin': '*', 'access-control-allow-credentials': 'true', 'access-control-expose-headers': 'x-internal' };
let stub: Stub;
let gw: Gateway;

before(async () => {
  stub = await startStub((r) => {
    r.res.setHeader('vary', 'Accept-Encoding');
    json(r.res, 200, { echo: r.body }, r.req.headers.origin ? UPSTREAM_CORS : {});
  });
  const manifests = [
    manifest('APIMExtensionPolicy', 'ext', { targetRef: { name: 'tollgate', kind: 'Gateway' } }),
    ...poolAndModel([stub.url], 'echo'),
    manifest('CORS', 'web', { allowOrigins: [ORIGIN], allowCredentials: true }),
    manifest('ApimTemplate', 'edge', { templates: [{ policies: [{ kind: 'CORS', name: 'web' }] }] }),
  ];
  gw = await startGateway({ configPaths: [], manifests, ...LOOPBACK, logger: silentLogger, extprocPort: 0 });
});

after(async () => {
  closeEnvoyClients();
  await gw?.close();
  await stub?.close();
});

async function chat(headers: Record<string, string>, model = 'echo') {
  const res = await request(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
  });
  await res.body.text();
  return { status: res.statusCode, vary: res.headers.vary, allowOrigin: res.headers['access-control-allow-origin'], headers: res.headers };
}

/** The answer's CORS headers, as the client (or Envoy, told by ext_proc) sends them on. */
const corsOf = (headers: Record<string, unknown>) => Object.fromEntries(Object.entries(headers).filter(([name]) => name.startsWith('access-control-')));

test('answers vary on Origin whatever the origin, beside the model server\'s Vary', async () => {
  const seen = [await chat({ origin: ORIGIN }), await chat({ origin: 'https://other.example' }), await chat({})];
  assert.deepEqual(
    seen.map((s) => [s.status, s.vary, s.allowOrigin]),
    [
      [200, 'Accept-Encoding, Origin', ORIGIN],
      [200, 'Accept-Encoding, Origin', undefined],
      [200, 'Accept-Encoding, Origin', undefined],
    ],
  );
  const fault = await chat({}, 'no-such-model');
  assert.deepEqual([fault.status, fault.vary], [404, 'Origin']);
});

test("the model server's CORS headers never reach the client: a refused origin gets none, an allowed one the policy's", async () => {
  const policy = { 'access-control-allow-origin': ORIGIN, 'access-control-allow-credentials': 'true' };
  assert.deepEqual(corsOf((await chat({ origin: 'https://evil.example' })).headers), {});
  assert.deepEqual(corsOf((await chat({ origin: ORIGIN })).headers), policy);
  const overExtproc = (origin: string) =>
    envoyExchange(`127.0.0.1:${gw.extprocPort}`, {
      path: '/v1/chat/completions',
      headers: { 'content-type': 'application/json', origin },
      body: JSON.stringify({ model: 'echo', messages: [{ role: 'user', content: 'hi' }] }),
      upstream: stub.url,
    });
  const refused = await overExtproc('https://evil.example');
  assert.equal(refused.status, 200, refused.body.toString());
  assert.deepEqual(corsOf(refused.headers), {});
  assert.deepEqual(corsOf((await overExtproc(ORIGIN)).headers), policy);
});

test("allowOrigins: ['*'] with allowCredentials is refused at load, naming the field", () => {
  assert.throws(() => manifest('CORS', 'open', { allowOrigins: ['*'], allowCredentials: true }), /spec\.allowOrigins: must list origins, not '\*'/);
});
