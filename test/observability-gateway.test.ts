// Observability through a real gateway: the usage record of every request reaches the analytics tables exactly
// once, traces leave with the expected span tree and traceparent reaches the model server, and /metrics carries
// the Inference Extension names with the values the traffic implies.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { request } from 'undici';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { AnalyticsRecords } from '../src/store/index.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';
import { manifest, poolAndModel, settings } from './helpers/manifests.js';
import { startOtlpReceiver, type OtlpReceiver, type OtlpSpan } from './helpers/otlp-receiver.js';
import { createApp, until } from './helpers/apim-admin.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

let receiver: OtlpReceiver;
let stub: Stub;
let gw: Gateway;
let dir: string;
let key: string;
let appName: string;

before(async () => {
  receiver = await startOtlpReceiver();
  stub = await startStub();
  dir = mkdtempSync(join(tmpdir(), 'tollgate-obs-'));
  gw = await startGateway({
    configPaths: [],
    manifests: [
      ...poolAndModel([stub.url], 'm', { targetModels: [{ name: 'm-target', weight: 1 }] }),
      settings({ tracing: { endpoint: receiver.endpoint, exportInterval: '20ms', policySpans: true }, analytics: { flushInterval: '50ms' } }),
      manifest('APIMExtensionPolicy', 'apim', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate' } }),
      manifest('APIProduct', 'gold', { displayName: 'Gold' }),
      manifest('APIOperationSet', 'gold-ops', { apiProductRefs: [{ name: 'gold' }], quota: { limit: 1000, interval: 1, timeUnit: 'minute' } }),
      manifest('HTTPRoute', 'to-url', { rules: [{ matches: [{ headers: [{ name: 'x-to', value: 'url' }] }], backendRefs: [{ url: stub.url }] }] }),
    ],
    ...LOOPBACK,
    db: `sqlite:${join(dir, 'obs.db')}`,
    analyticsDir: join(dir, 'analytics'),
  });
  const issued = await createApp(gw.adminUrl, ['gold'], 'obs');
  key = issued.key;
  appName = issued.app;
});

after(async () => {
  await gw.close();
  await stub.close();
  receiver.close();
  rmSync(dir, { recursive: true, force: true });
});

const chat = (headers: Record<string, string>, model = 'm') =>
  request(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }) });

test('every request leaves exactly one usage record, with identity, status and tokens', async () => {
  const statuses: number[] = [];
  for (let i = 0; i < 7; i++) statuses.push((await chat({ 'x-api-key': key })).statusCode);
  for (let i = 0; i < 3; i++) statuses.push((await chat({})).statusCode);
  for (let i = 0; i < 2; i++) statuses.push((await chat({ 'x-api-key': key }, 'unknown')).statusCode);
  assert.deepEqual(statuses, [...Array(7).fill(200), 401, 401, 401, 404, 404]);
  await gw.analytics!.flush();
  const rows = await until(
    async () => {
      const r = await request(`${gw.adminUrl}/v1/analytics/stats?groupBy=status,app&metrics=requests,input_tokens,output_tokens`);
      return ((await r.body.json()) as { rows: Record<string, unknown>[] }).rows;
    },
    (rows) => rows.reduce((s, row) => s + Number(row.requests), 0) >= 12,
    5000,
    'the 12 records in the stats',
  );
  const by = (status: number) => rows.filter((r) => Number(r.status) === status);
  assert.equal(by(200).reduce((s, r) => s + Number(r.requests), 0), 7);
  assert.equal(by(200)[0].app, appName);
  assert.equal(by(200).reduce((s, r) => s + Number(r.output_tokens), 0), 7 * 7);
  assert.equal(by(401).reduce((s, r) => s + Number(r.requests), 0), 3);
  assert.equal(by(404).reduce((s, r) => s + Number(r.requests), 0), 2);
  assert.equal(rows.reduce((s, r) => s + Number(r.requests), 0), 12);
});

test('a trace per request: server span with policies, pick and upstream children; traceparent reaches the model server', async () => {
  receiver.exports.length = 0;
  const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
  const r = await chat({ 'x-api-key': key, traceparent: `00-${callerTrace}-00f067aa0ba902b7-01` });
  assert.equal(r.statusCode, 200);
  await r.body.dump();
  const upstreamTraceparent = String(stub.requests.at(-1)!.req.headers.traceparent);
  assert.match(upstreamTraceparent, new RegExp(`^00-${callerTrace}-[0-9a-f]{16}-01$`));
  // The server span ends last and may come in a later export than its children: waited for by name, not by count.
  const tree = await until(
    async () => receiver.spans().filter((s) => s.traceId === callerTrace),
    (mine) => mine.length >= 4 && mine.some((s) => s.parentSpanId === '00f067aa0ba902b7') && mine.some((s) => s.name.startsWith('chat ')),
    5000,
    'the spans of the request, its server span among them',
  );
  const server = tree.find((s) => s.parentSpanId === '00f067aa0ba902b7')!;
  assert.ok(server, 'a server span continues the caller trace');
  const children = tree.filter((s) => s.parentSpanId === server.spanId).map((s) => s.name);
  assert.ok(children.includes('policies') && children.includes('pick'), JSON.stringify(children));
  // Each request policy of the default chain in a span of its own, under the policies stage.
  const policiesSpan = tree.find((s) => s.name === 'policies' && s.parentSpanId === server.spanId)!;
  const policySpans = tree.filter((s) => s.parentSpanId === policiesSpan.spanId).map((s) => s.name);
  assert.deepEqual([...new Set(policySpans)].sort(), ['llm-token-quota default-product-token-quota', 'quota default-product-quota', 'verify-api-key default-verify-api-key'], JSON.stringify(policySpans));
  const upstream = tree.find((s) => s.name.startsWith('chat '))!;
  assert.equal(upstream.parentSpanId, server.spanId);
  assert.equal(upstreamTraceparent.split('-')[2], upstream.spanId, 'the model server is called under the upstream span');
  const attr = (s: OtlpSpan, k: string) => s.attributes.find((a) => a.key === k)?.value;
  assert.equal(attr(server, 'gen_ai.request.model')?.stringValue, 'm');
  assert.equal(Number(attr(server, 'gen_ai.usage.output_tokens')?.intValue), 7);
});

test('a refusing policy marks its own span failed with the fault code', async () => {
  const callerTrace = '5bf92f3577b34da6a3ce929d0e0e4737';
  const r = await chat({ traceparent: `00-${callerTrace}-00f067aa0ba902b8-01` });
  assert.equal(r.statusCode, 401);
  await r.body.dump();
  const tree = await until(async () => receiver.spans().filter((s) => s.traceId === callerTrace), (mine) => mine.some((s) => s.name.startsWith('verify-api-key ')), 5000, 'the VerifyAPIKey span');
  const verify = tree.find((s) => s.name.startsWith('verify-api-key '))! as OtlpSpan & { status?: { code?: number } };
  assert.equal(verify.status?.code, 2, 'status ERROR');
  assert.equal(verify.attributes.find((a) => a.key === 'error.type')?.value.stringValue, 'steps.oauth.v2.FailedToResolveAPIKey');
  assert.equal(tree.find((s) => s.spanId === verify.parentSpanId)?.name, 'policies');
});

test('metrics carry the Inference Extension names with values from the traffic', async () => {
  // The file's tests run in order: 8 answered requests for m (7 + the traced one), 4 without a key (3 + the traced
  // refusal), 2 for an unknown model.
  // And one that node:http refuses before the data plane sees it (headers over the limit): a client refused all the same.
  await new Promise<void>((resolve) => {
    const socket = connect(gw.port, '127.0.0.1', () => socket.end(`GET /v1/models HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`));
    socket.on('data', () => {}).on('error', () => {}).on('close', () => resolve());
  });
  const text = await (await request(`${gw.adminUrl}/metrics`)).body.text();
  const value = (line: RegExp) => Number(text.split('\n').find((l) => line.test(l))?.split(' ').at(-1));
  assert.equal(value(/^tollgate_requests_total\{product="",model="",status="431"\}/), 1);
  assert.equal(value(/^inference_objective_request_total\{model_name="m",target_model_name="m-target"\}/), 8);
  assert.equal(value(/^inference_objective_output_tokens_sum\{model_name="m",target_model_name="m-target"\}/), 56);
  assert.equal(value(/^inference_objective_request_duration_seconds_count\{model_name="m",target_model_name="m-target"\}/), 8);
  assert.ok(value(/^tollgate_analytics_records_total\{outcome="written"\}/) >= 12);
  assert.equal(value(/^tollgate_requests_total\{product="gold",model="m",status="200"\}/), 8);
  assert.equal(value(/^tollgate_requests_total\{product="",model="m",status="401"\}/), 4);
  assert.equal(value(/^tollgate_policy_violations_total\{policy="VerifyAPIKey",fault_code="steps.oauth.v2.FailedToResolveAPIKey"\}/), 4);
  assert.equal(value(/^tollgate_counter_store_errors_total\{outcome="failed_open"\}/), 0);
  assert.equal(value(/^tollgate_model_info\{model_name="m",pool="pool"\}/), 1);
  // Model names from clients' bodies become labels only once they name a configured model: no series grows per name.
  assert.doesNotMatch(text, /"unknown"/);
  assert.equal(value(/^tollgate_requests_total\{product="[^"]*",model="",status="404"\}/), 2);
});

// Before, a stream an HTTPRoute sent to a URL went without the question, and its record without tokens (free in billing).
for (const [via, route] of [['a pool', {}], ['an HTTPRoute URL backend', { 'x-to': 'url' }]] as const) test(`a stream without stream_options to ${via} is counted: tollgate asks the server for usage, records it and strips it`, async () => {
  const sse = (res: ServerResponse, events: unknown[]) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (const e of events) res.write(`data: ${JSON.stringify(e)}\n\n`);
    res.end('data: [DONE]\n\n');
  };
  const handler = stub.handler;
  stub.handler = ({ res, body }) => {
    const withUsage = body?.stream_options?.include_usage === true;
    const chunk = (content: string) => ({ id: 'c', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content } }], ...(withUsage ? { usage: null } : {}) });
    sse(res, [chunk('Hel'), chunk('lo'), ...(withUsage ? [{ id: 'c', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 } }] : [])]);
  };
  try {
    const id = `stream-usage-${via.replaceAll(' ', '-')}-${Date.now()}`;
    const before = stub.requests.length;
    const res = await request(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key, 'x-request-id': id, ...route },
      body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    const text = await res.body.text();
    assert.equal(res.statusCode, 200);
    assert.equal(stub.requests[before].body.stream_options?.include_usage, true, 'the server was asked for usage');
    assert.doesNotMatch(text, /usage/, 'the client, which did not ask, sees none');
    assert.match(text, /Hel/);
    await gw.analytics!.flush();
    const rows = await new AnalyticsRecords(gw.apim!.db).kysely.selectFrom('analytics_records').select(['input_tokens', 'output_tokens']).where('request_id', '=', id).execute();
    assert.deepEqual(rows.map((r) => [Number(r.input_tokens), Number(r.output_tokens)]), [[9, 2]]);
  } finally {
    stub.handler = handler;
  }
});

test("bytes_out and the response-size histogram count the bytes the client got: a stripped usage chunk is not among them", async () => {
  const handler = stub.handler;
  stub.handler = ({ res }) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (const content of ['Hel', 'lo', ' there']) res.write(`data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content } }], usage: null })}\n\n`);
    res.write(`data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 } })}\n\n`);
    res.end('data: [DONE]\n\n');
  };
  const sizes = async () => {
    const text = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    return Number(text.split('\n').find((l) => l.startsWith('inference_objective_response_sizes_sum{model_name="m",target_model_name="m-target"}'))?.split(' ').at(-1) ?? 0);
  };
  try {
    const before = await sizes();
    const id = `bytes-out-${Date.now()}`;
    const res = await request(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key, 'x-request-id': id },
      body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    const received = Buffer.from(await res.body.arrayBuffer()).length;
    assert.equal(res.statusCode, 200);
    await gw.analytics!.flush();
    const rows = await new AnalyticsRecords(gw.apim!.db).kysely.selectFrom('analytics_records').select(['bytes_out', 'output_tokens']).where('request_id', '=', id).execute();
    // Before: the model server's bytes, the usage chunk tollgate stripped included.
    assert.deepEqual(rows.map((r) => [Number(r.bytes_out), Number(r.output_tokens)]), [[received, 3]]);
    assert.equal((await sizes()) - before, received);
  } finally {
    stub.handler = handler;
  }
});

test('GET /v1/tollgate/quota is recorded with the app and developer whose key it checked, as GET /v1/models is', async () => {
  const ids = { quota: `quota-${Date.now()}`, models: `models-${Date.now()}` };
  for (const [what, path] of [['quota', '/v1/tollgate/quota'], ['models', '/v1/models']] as const) {
    const r = await request(`${gw.url}${path}`, { headers: { 'x-api-key': key, 'x-request-id': ids[what] } });
    assert.equal(r.statusCode, 200, await r.body.text());
  }
  await gw.analytics!.flush();
  const rows = await new AnalyticsRecords(gw.apim!.db).kysely.selectFrom('analytics_records').select(['request_id', 'app_name', 'developer_email']).where('request_id', 'in', Object.values(ids)).execute();
  // Before: the report's key was checked on a state of its own, and its record named nobody.
  for (const id of Object.values(ids)) assert.deepEqual(rows.filter((r) => r.request_id === id).map((r) => r.app_name), [appName], id);
  assert.equal(rows[0].developer_email, rows[1].developer_email);
});

test('a HEAD answer is recorded with the bytes the client got: none, though its content-length says what a GET gets', async () => {
  const get = await request(`${gw.url}/v1/models`, { headers: { 'x-api-key': key } });
  const length = Buffer.from(await get.body.arrayBuffer()).length;
  const ids = [`head-${Date.now()}`, `head-refused-${Date.now()}`];
  for (const [id, headers] of [[ids[0], { 'x-api-key': key }], [ids[1], {}]] as const) {
    const r = await request(`${gw.url}/v1/models`, { method: 'HEAD', headers: { 'x-request-id': id, ...headers } });
    await r.body.dump();
    if (id === ids[0]) assert.equal(r.headers['content-length'], String(length));
  }
  await gw.analytics!.flush();
  const rows = await new AnalyticsRecords(gw.apim!.db).kysely.selectFrom('analytics_records').select(['request_id', 'status', 'bytes_out']).where('request_id', 'in', ids).orderBy('request_id').execute();
  // Before: the body node:http never sends to a HEAD (111 and 172 bytes).
  assert.deepEqual(rows.map((r) => [r.request_id, r.status, Number(r.bytes_out)]), [[ids[0], 200, 0], [ids[1], 401, 0]]);
});
