// POST /v1/responses/compact and /input_tokens behind an HTTPRoute to a URL, with API keys: a body with a byte order
// mark is read as every request body is, so another app's previous_response_id in it is the 404 it is in plain JSON,
// and one tollgate cannot parse (UTF-16, which the server's Python json reads) is refused rather than passed on
// unchecked. Over HTTP and over ext_proc alike.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { createApp, untilKeyKnown, type IssuedApp } from './helpers/apim-admin.js';
import { closeEnvoyClients, envoyExchange } from './helpers/extproc-envoy.js';
import { apiKeyManifests, manifest, poolAndModel } from './helpers/manifests.js';
import { json, startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const ID = 'resp_owned_by_a';

let server: Stub;
let gw: Gateway;
let a: IssuedApp;
let b: IssuedApp;

before(async () => {
  // An OpenAI-compatible server storing responses: every creation makes ID, every other operation is answered.
  server = await startStub((r) => {
    if (r.req.url === '/v1/responses') return json(r.res, 200, { id: ID, object: 'response', status: 'completed', output: [], usage: { input_tokens: 3, output_tokens: 1, total_tokens: 4 } });
    json(r.res, 200, { object: 'response.compaction' });
  });
  gw = await startGateway({
    configPaths: [],
    manifests: [
      ...apiKeyManifests('p'),
      ...poolAndModel([server.url]),
      manifest('HTTPRoute', 'openai', { rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/v1/responses' } }], backendRefs: [{ url: server.url }] }] }),
    ],
    ...LOOPBACK,
    extprocPort: 0,
    extproc: { requestBodyMode: 'BUFFERED' },
  });
  a = await createApp(gw.adminUrl, ['p'], 'owner');
  b = await createApp(gw.adminUrl, ['p'], 'other');
  await untilKeyKnown(gw.url, a.key);
  await untilKeyKnown(gw.url, b.key);
  const made = await request(`${gw.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': a.key }, body: JSON.stringify({ model: 'm', input: 'plans' }) });
  assert.equal(made.statusCode, 200, await made.body.text());
});

after(async () => {
  closeEnvoyClients();
  await gw?.close();
  await server?.close();
});

/** The status and error code `key`'s request gets over HTTP and over ext_proc, and how many reached the server. */
async function bothWays(path: string, key: string, body: Buffer): Promise<{ http: [number, string?]; extproc: [number, string?]; reached: number }> {
  const headers = { 'content-type': 'application/json', 'x-api-key': key };
  const before = server.requests.length;
  const r = await request(`${gw.url}${path}`, { method: 'POST', headers, body });
  const http: [number, string?] = [r.statusCode, ((await r.body.json()) as { error?: { code?: string | number } }).error?.code?.toString()];
  const e = await envoyExchange(`127.0.0.1:${gw.extprocPort}`, { path, headers, body, upstream: server.url });
  const extproc: [number, string?] = [e.status, (JSON.parse(e.body.toString()) as { error?: { code?: string | number } }).error?.code?.toString()];
  return { http, extproc, reached: server.requests.length - before };
}

test("a previous_response_id behind a byte order mark is checked as in plain JSON; a body that does not parse is refused", async () => {
  const fields = JSON.stringify({ model: 'm', previous_response_id: ID });
  const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(fields)]);
  for (const path of ['/v1/responses/compact', '/v1/responses/input_tokens']) {
    // The test can tell: plain JSON from the other app is the 404 never sent on, the owner's goes through.
    assert.deepEqual(await bothWays(path, b.key, Buffer.from(fields)), { http: [404, '404'], extproc: [404, '404'], reached: 0 }, path);
    // Before: 200 from the server, which read app A's conversation for app B (JSON.parse refused the mark, and a body
    // that did not parse went on unchecked).
    assert.deepEqual(await bothWays(path, b.key, bom), { http: [404, '404'], extproc: [404, '404'], reached: 0 }, path);
    assert.deepEqual(await bothWays(path, a.key, bom), { http: [200, undefined], extproc: [200, undefined], reached: 2 }, path);
    // Before: passed on unchecked too.
    const utf16 = Buffer.from(fields, 'utf16le');
    assert.deepEqual(await bothWays(path, b.key, utf16), { http: [400, 'invalid_json'], extproc: [400, 'invalid_json'], reached: 0 }, path);
  }
});
