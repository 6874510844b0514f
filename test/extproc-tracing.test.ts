// A request over ext_proc is traced as the built-in data plane traces it: a server span continuing the traceparent
// among the request headers, `policies` (with a span per policy under policySpans) and `pick` under it, ended once
// the answer is over. Envoy makes the upstream call: no client span, and the traceparent it forwards is its own.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { createApp, untilKeyKnown } from './helpers/apim-admin.js';
import { closeEnvoyClients, envoyExchange } from './helpers/extproc-envoy.js';
import { apiKeyManifests, poolAndModel, settings } from './helpers/manifests.js';
import { startOtlpReceiver, type OtlpReceiver, type OtlpSpan } from './helpers/otlp-receiver.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const CALLER_SPAN = '00f067aa0ba902b7';
const BODY = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });

let receiver: OtlpReceiver;
let stub: Stub;
let gw: Gateway;
let key: string;

before(async () => {
  receiver = await startOtlpReceiver();
  stub = await startStub();
  gw = await startGateway({
    configPaths: [],
    manifests: [...poolAndModel([stub.url]), ...apiKeyManifests(), settings({ analytics: { enabled: false }, tracing: { endpoint: receiver.endpoint, exportInterval: '10ms', policySpans: true } })],
    ...LOOPBACK,
    extprocPort: 0,
  });
  key = (await createApp(gw.adminUrl, ['p'])).key;
  await untilKeyKnown(gw.url, key);
});

after(async () => {
  closeEnvoyClients();
  await gw?.close();
  await stub?.close();
  receiver?.close();
});

let n = 0;
const traceparent = (traceId: string) => `00-${traceId}-${CALLER_SPAN}-01`;
const newTraceId = () => (++n).toString(16).padStart(32, 'c');

/** The trace's spans as `parent name > name` (the caller's span named `caller`), once its server span has come. */
async function tree(traceId: string): Promise<{ shape: string[]; spans: OtlpSpan[] }> {
  const deadline = Date.now() + 5000;
  const ended = () => receiver.spans().some((s) => s.traceId === traceId && s.parentSpanId === CALLER_SPAN);
  while (!ended() && Date.now() < deadline) {
    await gw.tracer.forceFlush();
    await new Promise((r) => setTimeout(r, 20));
  }
  // Children end before the server span, so are exported with it or before.
  const spans = receiver.spans().filter((s) => s.traceId === traceId);
  const names = new Map(spans.map((s) => [s.spanId, s.name]));
  names.set(CALLER_SPAN, 'caller');
  return { shape: spans.map((s) => `${names.get(s.parentSpanId!) ?? '?'} > ${s.name}`).sort(), spans };
}

async function overHttp(traceId: string, headers: Record<string, string>): Promise<number> {
  const r = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', traceparent: traceparent(traceId), ...headers }, body: BODY });
  await r.body.dump();
  return r.statusCode;
}

test('an admitted request over ext_proc: the data plane span tree without the client span, ended after the answer', async () => {
  const http = newTraceId();
  assert.equal(await overHttp(http, { 'x-api-key': key }), 200);
  const viaHttp = await tree(http);

  const extproc = newTraceId();
  const e = await envoyExchange(`127.0.0.1:${gw.extprocPort}`, { path: '/v1/chat/completions', headers: { 'content-type': 'application/json', 'x-api-key': key, traceparent: traceparent(extproc) }, body: BODY });
  assert.equal(e.status, 200);
  // Envoy's to forward (its router span's, when it traces): tollgate sets no traceparent of its own.
  assert.equal(e.upstream!.headers.traceparent, traceparent(extproc));
  const viaExtproc = await tree(extproc);

  for (const span of ['caller > POST /v1/chat/completions', 'POST /v1/chat/completions > policies', 'POST /v1/chat/completions > pick', 'policies > verify-api-key default-verify-api-key']) {
    assert.ok(viaExtproc.shape.includes(span), `${span} in ${viaExtproc.shape.join(', ')}`);
  }
  assert.deepEqual(viaExtproc.shape, viaHttp.shape.filter((s) => s !== 'POST /v1/chat/completions > chat m'));
  const server = viaExtproc.spans.find((s) => s.name === 'POST /v1/chat/completions')!;
  const attrs = Object.fromEntries(server.attributes.map((a) => [a.key, a.value.stringValue ?? Number(a.value.intValue ?? NaN)]));
  // Set when the request is finished: after the answer's usage was read, not when it was forwarded.
  assert.equal(attrs['http.response.status_code'], 200);
  assert.equal(attrs['gen_ai.usage.output_tokens'], 7);
  assert.equal(attrs['server.address'], 'gateway.example');
});

test('a request refused over ext_proc: the same spans as over HTTP, the refusing policy marked', async () => {
  const http = newTraceId();
  assert.equal(await overHttp(http, {}), 401);
  const viaHttp = await tree(http);

  const extproc = newTraceId();
  const e = await envoyExchange(`127.0.0.1:${gw.extprocPort}`, { path: '/v1/chat/completions', headers: { 'content-type': 'application/json', traceparent: traceparent(extproc) }, body: BODY });
  assert.equal(e.status, 401);
  const viaExtproc = await tree(extproc);

  assert.deepEqual(viaExtproc.shape, viaHttp.shape);
  assert.deepEqual(viaExtproc.shape, ['POST /v1/chat/completions > policies', 'caller > POST /v1/chat/completions', 'policies > verify-api-key default-verify-api-key']);
  const policy = viaExtproc.spans.find((s) => s.name === 'verify-api-key default-verify-api-key')!;
  assert.equal(policy.status?.code, 2);
});
