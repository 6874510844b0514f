// tollgate's data plane calling an ext_proc extension — tollgate's own policy decision point, in another process —
// on its request and response path; and what an extension that is down or slow does, with failOpen off and on.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Server, ServerCredentials, type ServerDuplexStream } from '@grpc/grpc-js';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { composeHooks } from '../src/extproc/compose-hooks.js';
import { extprocHooks, type ExtensionHooks, type ExtensionOptions } from '../src/extproc/extension-hooks.js';
import type { ProcessingRequest, ProcessingResponse } from '../src/extproc/messages.js';
import { extProcService } from '../src/extproc/protos.js';
import { freePort } from '../src/lib/ports.js';
import { call, codeOf, createApp, quotaReport, until, untilKeyKnown, type IssuedApp } from './helpers/apim-admin.js';
import { startExtprocChild, type ExtprocChild } from './helpers/extproc-child.js';
import { manifest } from './helpers/manifests.js';
import { json, startStub, type Stub, type StubRequest } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const ALL_EVENTS = ['RequestHeaders', 'RequestBody', 'ResponseHeaders', 'ResponseBody'] as const;

function upstream(r: StubRequest): void {
  if (r.body?.stream) {
    r.res.writeHead(200, { 'content-type': 'text/event-stream' });
    r.res.write('data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n');
    r.res.write('data: {"choices":[],"usage":{"prompt_tokens":6,"completion_tokens":2,"total_tokens":8}}\n\n');
    r.res.end('data: [DONE]\n\n');
    return;
  }
  json(r.res, 200, { echo: r.body, headers: r.req.headers, usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 } });
}

const ROUTING: [string, string, unknown][] = [['InferenceModel', 'chat', { modelName: 'chat', poolRef: { name: 'pool' } }]];

let stub: Stub;
let pdp: ExtprocChild;
let gw: Gateway;
let app: IssuedApp;
const extensions: ExtensionHooks[] = [];

/** The frontend's hooks: this extension, then its own (empty) policy engine. */
function use(options: Partial<ExtensionOptions>): void {
  const ext = extprocHooks({ name: 'pdp', address: pdp.extproc, supportedEvents: ALL_EVENTS, timeoutMs: 2000, failOpen: false, ...options }, { registry: gw.registry });
  extensions.push(ext);
  gw.dataPlane.hooks = composeHooks(ext, gw.apim.hooks);
  gw.apim.onHooks = (hooks) => (gw.dataPlane.hooks = composeHooks(ext, hooks));
}

function chat(body: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return call(gw.url, 'POST', '/v1/chat/completions', { model: 'chat', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 8, ...body }, headers);
}

async function tokensAtPdp(key: string): Promise<number> {
  return (await quotaReport(pdp.url, key)).body.products[0].operationSets[0].llmTokenQuota.used;
}

async function failures(extension: string, reason: string): Promise<number> {
  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  const m = new RegExp(`^tollgate_extproc_client_failures_total\\{extension="${extension}",reason="${reason}"\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

before(async () => {
  stub = await startStub(upstream);
  const ref = [{ name: 'ext', kind: 'APIMExtensionPolicy', group: 'apim.googleapis.com' }];
  pdp = await startExtprocChild({
    roles: ['pdp'],
    manifests: [
      ['APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate' } }],
      ['APIProduct', 'gold', { displayName: 'Gold', approvalType: 'auto', enforcementRefs: ref }],
      ['APIOperationSet', 'gold-ops', { apiProductRefs: [{ name: 'gold' }], llmOperations: { models: ['chat'], llmTokenQuota: { limit: 100_000, interval: 1, timeUnit: 'hour', countOn: 'total' } } }],
      ['InferencePool', 'pool', { endpoints: ['http://127.0.0.1:9'] }],
      ...ROUTING,
    ],
  });
  gw = await startGateway({
    configPaths: [],
    manifests: [manifest('InferencePool', 'pool', { endpoints: [stub.url] }), ...ROUTING.map(([k, n, s]) => manifest(k, n, s))],
    ...LOOPBACK,
  });
  app = await createApp(pdp.adminUrl, ['gold'], 'loopback');
  await untilKeyKnown(pdp.url, app.key);
});

after(async () => {
  for (const e of extensions) e.close();
  await gw?.close();
  await pdp?.stop();
  await stub?.close();
});

describe('tollgate data plane → ext_proc → tollgate policy decision point (two processes)', () => {
  before(() => use({}));

  test('no key: the extension\'s verdict, as it wrote it', async () => {
    const r = await chat();
    assert.equal(r.status, 401);
    assert.equal(codeOf(r), 'steps.oauth.v2.FailedToResolveAPIKey');
    assert.equal(stub.requests.length, 0);
  });

  test('a key: forwarded with the identity the extension added and without the credentials; tokens counted there', async () => {
    const before = await tokensAtPdp(app.key);
    const r = await chat({}, { authorization: `Bearer ${app.key}` });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const seen = r.body.headers;
    assert.equal(seen['x-tollgate-app-id'], app.appId);
    assert.equal(seen['x-tollgate-product'], 'gold');
    assert.equal(seen.authorization, undefined);
    assert.ok(r.headers['x-ratelimit-remaining-tokens'], 'the extension\'s answer headers reach the client');
    await until(() => tokensAtPdp(app.key), (used) => used === before + 12, 5000, 'tokens counted by the extension from the JSON answer');
  });

  test('the extension\'s body changes go upstream: the output cap its token quota chose', async () => {
    const r = await chat({ max_tokens: undefined }, { 'x-api-key': app.key });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(Number.isInteger(r.body.echo.max_completion_tokens) && r.body.echo.max_completion_tokens > 0, JSON.stringify(r.body.echo));
    assert.equal(r.body.echo.model, 'chat');
  });

  test('a streamed answer: passed on as it comes, observed by the extension, which counts its tokens', async () => {
    const before = await tokensAtPdp(app.key);
    const r = await chat({ stream: true, stream_options: { include_usage: true } }, { 'x-api-key': app.key });
    assert.equal(r.status, 200);
    assert.ok(String(r.body).includes('"total_tokens":8'));
    await until(() => tokensAtPdp(app.key), (used) => used === before + 8, 5000, 'tokens counted by the extension from the SSE usage chunk');
  });
});

describe('an extension that cannot answer', () => {
  let silent: Server;
  let silentAddress: string;
  before(async () => {
    // Accepts streams and never answers: a slow extension.
    silent = new Server();
    silent.addService(extProcService(), { Process: () => {} });
    const port = await new Promise<number>((resolve, reject) => silent.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    silentAddress = `127.0.0.1:${port}`;
  });
  after(() => silent.forceShutdown());

  test('unreachable, failOpen false → 500 extension_failed before anything is sent, counted', async () => {
    use({ name: 'down', address: `127.0.0.1:${await freePort()}`, failOpen: false });
    const before = await failures('down', 'unavailable');
    const r = await chat({}, { 'x-api-key': app.key });
    assert.equal(r.status, 500);
    assert.equal(codeOf(r), 'extension_failed');
    assert.equal(await failures('down', 'unavailable'), before + 1);
  });

  test('unreachable, failOpen true → the request goes on without it, counted', async () => {
    use({ name: 'down-open', address: `127.0.0.1:${await freePort()}`, failOpen: true });
    const r = await chat();
    assert.equal(r.status, 200);
    assert.equal(await failures('down-open', 'unavailable'), 1);
  });

  test('slower than its timeout, failOpen false → 500 after the timeout, counted as a timeout', async () => {
    use({ name: 'slow', address: silentAddress, timeoutMs: 150, failOpen: false });
    const t0 = performance.now();
    const r = await chat({}, { 'x-api-key': app.key });
    const ms = performance.now() - t0;
    assert.equal(r.status, 500);
    assert.equal(codeOf(r), 'extension_failed');
    assert.ok(ms >= 140 && ms < 2000, `${ms} ms`);
    assert.equal(await failures('slow', 'timeout'), 1);
  });

  test('slower than its timeout, failOpen true → answered after the timeout', async () => {
    use({ name: 'slow-open', address: silentAddress, timeoutMs: 100, failOpen: true });
    const r = await chat();
    assert.equal(r.status, 200);
    assert.equal(await failures('slow-open', 'timeout'), 1);
  });
});

describe('an extension that rewrites a large body', () => {
  let redact: Server;
  let redactAddress: string;
  before(async () => {
    // Redacts the prompt and answers with the whole rewritten body, as a redaction extension does.
    redact = new Server({ 'grpc.max_receive_message_length': 64 << 20, 'grpc.max_send_message_length': 64 << 20 });
    redact.addService(extProcService(), {
      Process: (stream: ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => {
        stream.on('data', (m: ProcessingRequest) => {
          if (m.request !== 'request_body') return stream.write({ [m.request!]: {} });
          const body = m.request_body!.body!.toString().replaceAll('secret', 'XXXXXX');
          stream.write({ request_body: { response: { body_mutation: { body: Buffer.from(body) } } } });
        });
        stream.on('end', () => stream.end());
      },
    });
    const port = await new Promise<number>((resolve, reject) => redact.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    redactAddress = `127.0.0.1:${port}`;
  });
  after(() => redact.forceShutdown());

  test('an answer over grpc-js\'s default 4 MiB (a 5 MiB body, within the body limit) is taken, and its body goes upstream', async () => {
    // Not about time: 5 MiB each way through gRPC took over the default 2 s on a loaded host.
    use({ name: 'redact', address: redactAddress, supportedEvents: ['RequestHeaders', 'RequestBody'], timeoutMs: 15_000 });
    const before = stub.requests.length;
    const r = await chat({ messages: [{ role: 'user', content: 'secret '.repeat(750_000) }] });
    assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
    assert.equal(stub.requests.length, before + 1);
    const sent = stub.requests.at(-1)!.body.messages[0].content as string;
    assert.equal(sent.length, 7 * 750_000);
    assert.ok(!sent.includes('secret') && sent.startsWith('XXXXXX '));
  });
});
