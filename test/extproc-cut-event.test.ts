// A stream the model server ends inside an event (its body ends there: a close-delimited stream whose server died),
// under SanitizeModelResponse: over ext_proc the client gets what it gets from the data plane, the last whole event then
// the error event, never the half event (which the sanitizer cannot read, so it went out unredacted), and the request is
// recorded as the fault it is.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { createApp, until, untilKeyKnown, type IssuedApp } from './helpers/apim-admin.js';
import { closeEnvoyClients, envoyExchange } from './helpers/extproc-envoy.js';
import { collectingLogger } from './helpers/log-lines.js';
import { apiKeyManifests, manifest, poolAndModel } from './helpers/manifests.js';
import { untilEndpoints } from './helpers/pool-ready.js';
import { startStub, type Stub, type StubRequest } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const SECRET = 'AKIAIOSFODNN7EXAMPLQ';

/** Per API: its path, a stream request, and what its model server sends: one whole event, then half of one. */
const APIS = {
  chat: {
    path: '/v1/chat/completions',
    body: { model: 'm', messages: [{ role: 'user', content: 'tell me' }], stream: true },
    answer:
      'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello."},"finish_reason":null}]}\n\n' +
      `data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"the key is ${SECRET} and more`,
  },
  responses: {
    path: '/v1/responses',
    body: { model: 'm', input: 'tell me', stream: true, store: false },
    answer:
      'event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{"id":"resp_cut","object":"response","status":"in_progress"}}\n\n' +
      `event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":1,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"the key is ${SECRET} and more`,
  },
};

let stub: Stub;
let gw: Gateway;
let app: IssuedApp;
const { logger, lines } = collectingLogger();

before(async () => {
  stub = await startStub((r: StubRequest) => {
    r.res.writeHead(200, { 'content-type': 'text/event-stream' });
    r.res.end(r.req.url === APIS.responses.path ? APIS.responses.answer : APIS.chat.answer);
  });
  gw = await startGateway({
    configPaths: [],
    manifests: [
      ...apiKeyManifests('p'),
      manifest('SanitizeModelResponse', 'guard', { filters: { secrets: { action: 'redact' } } }),
      manifest('ApimTemplate', 'tpl', { templates: [{ policies: [{ kind: 'SanitizeModelResponse', name: 'guard' }] }] }),
      ...poolAndModel([stub.url]),
    ],
    ...LOOPBACK,
    logger,
    extprocPort: 0,
    extproc: { requestBodyMode: 'BUFFERED', responseBodyMode: 'STREAMED' },
  });
  await untilEndpoints(gw);
  app = await createApp(gw.adminUrl, ['p'], 'cut-event');
  await untilKeyKnown(gw.url, app.key);
});

after(async () => {
  closeEnvoyClients();
  await gw?.close();
  await stub?.close();
});

for (const [api, { path, body }] of Object.entries(APIS)) {
  test(`${api}: a stream ended inside an event ends over ext_proc as on the data plane, the half event never sent`, async () => {
    const headers = { 'content-type': 'application/json', 'x-api-key': app.key };
    const direct = await request(`${gw.url}${path}`, { method: 'POST', headers: { ...headers, 'x-request-id': `http-${api}` }, body: JSON.stringify(body) });
    const sent = await direct.body.text();
    assert.equal(direct.statusCode, 200);
    assert.match(sent, /"code":"upstream_error"\}\}\n\n$/);
    if (api === 'responses') {
      // OpenAI's error event, numbered after the last whole event (before: chat's `data: {"error": ...}`, which the
      // Vercel AI SDK's Responses parser reported as a validation error instead of this message).
      const last = /event: error\ndata: (.*)\n\n$/.exec(sent);
      assert.ok(last, sent);
      const error = JSON.parse(last[1]);
      assert.deepEqual([error.type, error.sequence_number, error.code, error.param, error.error.code], ['error', 1, 'upstream_error', null, 'upstream_error']);
      assert.match(error.message, /ended the answer early/);
    }
    // Split in small pieces, as Envoy may pass it: the cut event spans several.
    const viaEnvoy = await envoyExchange(`127.0.0.1:${gw.extprocPort}`, {
      path,
      headers: { ...headers, 'x-request-id': `extproc-${api}` },
      body: JSON.stringify(body),
      responseBodyMode: 'STREAMED',
      responseChunkBytes: 7,
    });
    assert.equal(viaEnvoy.status, 200);
    // Before: the half event, secret and all, then (chat) the sanitizer's held text glued on after it.
    assert.equal(viaEnvoy.body.toString(), sent);
    assert.ok(!sent.includes(SECRET));
    for (const id of [`http-${api}`, `extproc-${api}`]) {
      // Under ext_proc the exchange is logged once Envoy's stream closes, after the answer is out.
      const line = await until(async () => lines.find((l) => l.msg === 'request' && l.requestId === id), (l) => l !== undefined, 5_000, `${id} logged`);
      // Before, over ext_proc: 200 without an error code, a success in the records and metrics.
      assert.deepEqual([line!.status, line!.errorCode], [200, 'upstream_error'], id);
    }
  });
}
