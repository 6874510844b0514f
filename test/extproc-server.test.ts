// The ext_proc listener driven as Envoy drives it, on a gateway with API management: buffered, streamed (split at
// awkward places) and headers-only requests, JSON and SSE answers with token accounting, the subset hint, each
// role alone, the health service, and TLS with client certificates.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client} from '@grpc/grpc-js';
import { credentials, makeGenericClientConstructor, status, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import type { Manifest } from '../src/config/manifest.js';
import { ExtprocClient } from '../src/extproc/client.js';
import { readExtensionTls } from '../src/extproc/extension-kind.js';
import { EXT_PROC_SERVICE, healthService } from '../src/extproc/protos.js';
import { startExtprocServer, type ExtprocServer } from '../src/extproc/server.js';
import { silentLogger } from '../src/lib/logger.js';
import { createApp, quotaReport, until, untilKeyKnown, type IssuedApp } from './helpers/apim-admin.js';
import { closeEnvoyClients, envoyExchange, type EnvoyRequest } from './helpers/extproc-envoy.js';
import { manifest } from './helpers/manifests.js';
import { startStub, type Stub, type StubRequest } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const TOKENS = 1_000_000;

function sse(r: StubRequest): void {
  const withUsage = r.body?.stream_options?.include_usage === true;
  const nullUsage = withUsage ? ',"usage":null' : '';
  r.res.writeHead(200, { 'content-type': 'text/event-stream' });
  r.res.write(`data: {"id":"c1","choices":[{"index":0,"delta":{"content":"Hé"}}]${nullUsage}}\n\n`);
  r.res.write(`data: {"id":"c1","choices":[{"index":0,"delta":{"content":"llo, wörld"}}]${nullUsage}}\n\n`);
  if (withUsage) r.res.write('data: {"id":"c1","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}\n\n');
  r.res.end('data: [DONE]\n\n');
}

function manifests(a: Stub, b: Stub, c: Stub, events: Stub): Manifest[] {
  const ext = [{ name: 'ext', kind: 'APIMExtensionPolicy', group: 'apim.googleapis.com' }];
  return [
    manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate' } }),
    manifest('APIProduct', 'gold', { displayName: 'Gold', approvalType: 'auto', enforcementRefs: ext }),
    manifest('APIOperationSet', 'gold-ops', {
      apiProductRefs: [{ name: 'gold' }],
      quota: { limit: 10_000, interval: 1, timeUnit: 'minute' },
      llmOperations: { models: ['m', 'trio', 'sse'], llmTokenQuota: { limit: TOKENS, interval: 1, timeUnit: 'hour', countOn: 'total' } },
    }),
    manifest('InferencePool', 'one', { endpoints: [a.url] }),
    manifest('InferencePool', 'trio', { endpoints: [a.url, b.url, c.url] }),
    manifest('InferencePool', 'events', { endpoints: [events.url] }),
    manifest('InferenceModel', 'm', { modelName: 'm', poolRef: { name: 'one' }, targetModels: [{ name: 'm-base', weight: 1 }] }),
    manifest('InferenceModel', 'trio', { modelName: 'trio', poolRef: { name: 'trio' } }),
    manifest('InferenceModel', 'sse', { modelName: 'sse', poolRef: { name: 'events' } }),
    // URL backends on their scheme's default port, which a test cannot listen on (envoyExchange's connectTo).
    manifest('HTTPRoute', 'urls', {
      rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/ext' } }], backendRefs: [{ url: 'http://10.1.2.3' }] },
        { matches: [{ path: { type: 'PathPrefix', value: '/tls' } }], backendRefs: [{ url: 'https://10.1.2.4' }] },
      ],
    }),
  ];
}

let a: Stub, b: Stub, c: Stub, events: Stub;
let gw: Gateway;
let app: IssuedApp;
let address: string;

const address_ = (s: Stub) => `127.0.0.1:${s.port}`;
const MESSAGES = [{ role: 'user', content: 'héllo "wörld"' }];

function chat(body: Record<string, unknown>, extra: Partial<EnvoyRequest> = {}, key: string | null = app.key): Promise<Awaited<ReturnType<typeof envoyExchange>>> {
  return envoyExchange(address, {
    path: '/v1/chat/completions',
    headers: { 'content-type': 'application/json', ...(key && { authorization: `Bearer ${key}` }) },
    body: JSON.stringify({ model: 'm', messages: MESSAGES, max_tokens: 16, ...body }),
    ...extra,
  });
}

async function tokensUsed(key: string): Promise<number> {
  return (await quotaReport(gw.url, key)).body.products[0].operationSets[0].llmTokenQuota.used;
}

before(async () => {
  [a, b, c, events] = await Promise.all([startStub(), startStub(), startStub(), startStub(sse)]);
  gw = await startGateway({ configPaths: [], manifests: manifests(a, b, c, events), ...LOOPBACK, extprocPort: 0 });
  address = `127.0.0.1:${gw.extprocPort}`;
  app = await createApp(gw.adminUrl, ['gold'], 'extproc');
  await untilKeyKnown(gw.url, app.key);
});

after(async () => {
  closeEnvoyClients();
  await gw?.close();
  await Promise.all([a, b, c, events].map((s) => s?.close()));
});

describe('requests as Envoy sends them', () => {
  test('buffered: destination as header and envoy.lb metadata, model rewritten, credentials out, identity in, tokens counted', async () => {
    const before = await tokensUsed(app.key);
    const r = await chat({});
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(r.destination, address_(a));
    assert.equal(r.metadataDestination, r.destination, 'header and metadata agree');
    assert.ok(r.clearRouteCache);
    const up = r.upstream!;
    assert.equal(up.headers.authorization, undefined);
    assert.equal(up.headers['x-api-key'], undefined);
    assert.equal(up.headers['x-tollgate-app-id'], app.appId);
    assert.equal(up.headers['x-tollgate-product'], 'gold');
    assert.equal(JSON.parse(up.body.toString()).model, 'm-base');
    assert.equal(JSON.parse(up.body.toString()).messages[0].content, MESSAGES[0].content);
    assert.equal(r.headers['x-request-id'], up.headers['x-request-id'], 'one request id, upstream and back');
    assert.equal(up.headers['accept-encoding'], 'identity', 'the answer comes back readable for usage and response policies');
    assert.ok(r.headers['x-ratelimit-remaining-tokens'], 'the rate-limit figures reach the client');
    await until(() => tokensUsed(app.key), (used) => used === before + 12, 3000, 'tokens counted from the JSON usage');
  });

  test('a client cannot pass identity headers off as its own', async () => {
    const r = await chat({}, { headers: { 'content-type': 'application/json', authorization: `Bearer ${app.key}`, 'x-tollgate-developer': 'someone-else' } });
    assert.equal(r.status, 200);
    assert.notEqual(r.upstream!.headers['x-tollgate-developer'], 'someone-else');
  });

  test("a client's own destination header cannot pick the upstream, whatever the body mode", async () => {
    const evil = await startStub();
    try {
      const own = { 'x-gateway-destination-endpoint': address_(evil), 'x-gateway-destination-endpoint-served': address_(evil) };
      for (const requestBodyMode of ['STREAMED', 'BUFFERED'] as const) {
        // STREAMED: Envoy routes on the headers answer, before the picker's choice is known; here it falls back to `upstream`.
        const r = await chat({}, { requestBodyMode, upstream: a.url, headers: { 'content-type': 'application/json', authorization: `Bearer ${app.key}`, ...own } });
        assert.equal(r.status, 200, `${requestBodyMode}: ${r.body.toString()}`);
        assert.equal(evil.requests.length, 0, `${requestBodyMode}: the client's choice was not followed`);
        assert.equal(r.upstream!.url, a.url);
        assert.equal(r.upstream!.headers['x-gateway-destination-endpoint-served'], undefined);
        const removed = r.answers[0].request_headers?.response?.header_mutation?.remove_headers ?? [];
        assert.ok(removed.includes('x-gateway-destination-endpoint'), `${requestBodyMode}: removed in the headers answer (${removed.join(', ')})`);
      }
      const models = await envoyExchange(address, { path: '/v1/models', headers: { authorization: `Bearer ${app.key}`, ...own } });
      assert.equal(models.status, 200);
    } finally {
      await evil.close();
    }
  });

  test('header values sent as `value` strings (older Envoys) are read, and answered in the same field', async () => {
    const r = await chat({}, { stringValues: true });
    assert.equal(r.status, 200);
    const set = r.answers.flatMap((x) => x.request_body?.response?.header_mutation?.set_headers ?? []);
    assert.ok(set.length > 0);
    for (const o of set) {
      assert.ok(o.header.value !== undefined && (o.header.raw_value === undefined || o.header.raw_value.length === 0), o.header.key);
    }
  });

  test('headers-only: GET /v1/models answered locally; GET on a POST path 405; a fault is the data plane\'s answer', async () => {
    const models = await envoyExchange(address, { path: '/v1/models', headers: { 'x-api-key': app.key } });
    assert.ok(models.local);
    assert.equal(models.status, 200);
    assert.deepEqual(JSON.parse(models.body.toString()).data.map((m: { id: string }) => m.id).sort(), ['m', 'sse', 'trio']);
    const wrong = await envoyExchange(address, { path: '/v1/chat/completions', headers: { 'x-api-key': app.key } });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.allow, 'POST', 'as the data plane says it');
    const denied = await chat({}, {}, null);
    assert.ok(denied.local);
    assert.equal(denied.status, 401);
    assert.equal(JSON.parse(denied.body.toString()).error.code, 'steps.oauth.v2.FailedToResolveAPIKey');
    assert.equal(denied.headers['content-type'], 'application/json');
  });

  test('streamed, split inside a UTF-8 character and inside a JSON string: the same decision as buffered', async () => {
    const body = Buffer.from(JSON.stringify({ model: 'm', messages: MESSAGES, max_tokens: 16 }));
    const inChar = body.indexOf(Buffer.from('é')) + 1;
    const inString = body.indexOf(Buffer.from('wö')) + 1;
    const chunks = [body.subarray(0, 5), body.subarray(5, inChar), body.subarray(inChar, inString), body.subarray(inString), Buffer.alloc(0)];
    const streamed = await envoyExchange(address, {
      path: '/v1/chat/completions',
      headers: { 'content-type': 'application/json', 'x-api-key': app.key },
      body,
      requestBodyMode: 'STREAMED',
      chunks,
      // Envoy applies no header changes from body answers in STREAMED mode: the route comes from elsewhere.
      upstream: a.url,
    });
    assert.equal(streamed.status, 200, streamed.body.toString());
    const bodyAnswers = streamed.answers.filter((x) => x.request_body);
    assert.equal(bodyAnswers.length, chunks.length);
    for (const x of bodyAnswers.slice(0, -1)) assert.equal(x.request_body!.response!.body_mutation!.clear_body, true, 'held back until judged');
    assert.equal(streamed.metadataDestination, address_(a));
    assert.equal(streamed.upstream!.headers['x-api-key'], undefined, 'credentials go at the headers, before any body');
    const sent = JSON.parse(streamed.upstream!.body.toString());
    assert.equal(sent.model, 'm-base');
    assert.equal(sent.messages[0].content, MESSAGES[0].content, 'multi-byte characters survive the split');
    const buffered = await chat({});
    assert.equal(buffered.destination, streamed.metadataDestination);
    assert.deepEqual(JSON.parse(buffered.upstream!.body.toString()), sent);
  });
});

/**
 * A gateway of its own (API management without the default chain, model m on stub a, these policies in one template)
 * for `use` with its ext_proc address; closed after.
 */
async function withPolicies(policies: Manifest[], use: (gw: Gateway, address: string) => Promise<void>): Promise<void> {
  const own = await startGateway({
    configPaths: [],
    manifests: [
      manifest('APIMExtensionPolicy', 'ext', { targetRef: { name: 'tollgate' } }),
      manifest('APIProduct', 'gold', { displayName: 'Gold' }),
      manifest('APIOperationSet', 'gold-ops', { apiProductRefs: [{ name: 'gold' }], llmOperations: { models: ['m'] } }),
      manifest('InferencePool', 'one', { endpoints: [a.url] }),
      manifest('InferenceModel', 'm', { modelName: 'm', poolRef: { name: 'one' } }),
      ...policies,
      manifest('ApimTemplate', 'template', { templates: [{ policies: policies.map((p) => ({ kind: p.kind, name: p.metadata.name })) }] }),
    ],
    ...LOOPBACK,
    extprocPort: 0,
  });
  try {
    await use(own, `127.0.0.1:${own.extprocPort}`);
  } finally {
    await own.close();
  }
}

const CHAT_M = JSON.stringify({ model: 'm', messages: MESSAGES, max_tokens: 16 });

describe('a key read from a query parameter', () => {
  test('the :path Envoy forwards has the key taken out, the rest of the query kept', async () => {
    await withPolicies([manifest('VerifyAPIKey', 'key-in-query', { apiKey: { ref: 'request.queryparam.apikey' } })], async (own, address) => {
      const k = await createApp(own.adminUrl, ['gold'], 'query-key');
      const exchange = () => envoyExchange(address, { path: `/v1/chat/completions?tenant=t1&apikey=${k.key}`, headers: { 'content-type': 'application/json' }, body: CHAT_M });
      const r = await until(exchange, (x) => x.status === 200, 5000, 'key known');
      assert.equal(r.upstream!.path, '/v1/chat/completions?tenant=t1');
      assert.equal(a.requests.at(-1)!.req.url, '/v1/chat/completions?tenant=t1');
    });
  });
});

describe('a response policy that changes headers with the body', () => {
  test('with the answer buffered, the header changes come with the body answer and reach the client', async () => {
    const script = `response.headers['x-from-script'] = 'yes'; delete response.headers['x-request-id']; response.body.touched = true;`;
    await withPolicies([manifest('JavaScript', 'shape', { flow: 'response', source: script, timeLimit: '5s' })], async (_own, address) => {
      const exchange = () => envoyExchange(address, { path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: CHAT_M, responseBodyMode: 'BUFFERED' });
      const r = await until(exchange, (x) => x.status === 200, 5000, 'endpoint ready');
      assert.equal(JSON.parse(r.body.toString()).touched, true);
      assert.equal(r.headers['x-from-script'], 'yes');
      assert.equal(r.headers['x-request-id'], undefined);
      assert.equal(Number(r.headers['content-length']), r.body.length);
    });
  });
});

describe('answers as Envoy shows them', () => {
  test('an SSE stream in 7-byte pieces: usage counted, the usage chunk tollgate asked for stripped, text intact', async () => {
    const before = await tokensUsed(app.key);
    const r = await chat({ model: 'sse', stream: true }, { responseBodyMode: 'STREAMED', responseChunkBytes: 7 });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.upstream!.body.toString()).stream_options.include_usage, true, 'usage asked of the model server');
    const text = r.body.toString();
    assert.ok(!text.includes('"usage"'), `the client did not ask for usage: ${text}`);
    assert.ok(text.includes('Hé') && text.includes('llo, wörld') && text.endsWith('data: [DONE]\n\n'), text);
    await until(() => tokensUsed(app.key), (used) => used === before + 13, 3000, 'tokens counted from the SSE usage chunk');
  });

  test('an SSE stream buffered whole: usage counted just the same', async () => {
    const before = await tokensUsed(app.key);
    const r = await chat({ model: 'sse', stream: true, stream_options: { include_usage: true } }, { responseBodyMode: 'BUFFERED' });
    assert.equal(r.status, 200);
    assert.ok(r.body.toString().includes('"usage":{"prompt_tokens":9'), 'asked for by the client: kept');
    await until(() => tokensUsed(app.key), (used) => used === before + 13, 3000, 'tokens counted');
  });
});

describe('subset hint (envoy.lb.subset_hint)', () => {
  test('only the hinted endpoint is picked', async () => {
    for (let i = 0; i < 4; i++) {
      const r = await chat({ model: 'trio' }, { subset: [address_(b)] });
      assert.equal(r.status, 200);
      assert.equal(r.destination, address_(b));
    }
  });

  test('a hint with nothing eligible, or an empty one → 503', async () => {
    for (const subset of [['10.255.0.1:8000'], []]) {
      const r = await chat({ model: 'trio' }, { subset });
      assert.ok(r.local);
      assert.equal(r.status, 503);
      assert.equal(JSON.parse(r.body.toString()).error.code, 'no_healthy_endpoints');
    }
  });
});

describe('one role per listener', () => {
  let pdp: ExtprocServer;
  let epp: ExtprocServer;
  before(async () => {
    pdp = await startExtprocServer({ dataPlane: gw.dataPlane, logger: silentLogger }, { port: 0, host: '127.0.0.1', roles: ['pdp'] });
    epp = await startExtprocServer({ dataPlane: gw.dataPlane, logger: silentLogger }, { port: 0, host: '127.0.0.1', roles: ['epp'] });
  });
  after(async () => {
    await pdp?.close(100);
    await epp?.close(100);
  });

  test('endpoint picker, HTTPRoute URL backends: the destination with its default port; the subset hint honoured', async () => {
    for (const [path, address] of [['/ext/x', '10.1.2.3:80'], ['/tls/y', '10.1.2.4:443']]) {
      const r = await envoyExchange(`127.0.0.1:${epp.port}`, { path, connectTo: a.url });
      assert.equal(r.status, 200, path);
      assert.equal(r.destination, address);
      assert.equal(r.metadataDestination, address);
      const hinted = await envoyExchange(`127.0.0.1:${epp.port}`, { path, connectTo: a.url, subset: [address] });
      assert.equal(hinted.destination, address);
      for (const subset of [['10.9.9.9:8000'], []]) {
        const refused = await envoyExchange(`127.0.0.1:${epp.port}`, { path, connectTo: a.url, subset });
        assert.ok(refused.local, `${path} ${JSON.stringify(subset)}`);
        assert.equal(refused.status, 503);
        assert.equal(JSON.parse(refused.body.toString()).error.code, 'no_healthy_endpoints');
      }
    }
  });

  test('policy decision point: the verdict and identity, no destination, the model name left to the picker', async () => {
    const r = await envoyExchange(`127.0.0.1:${pdp.port}`, {
      path: '/v1/chat/completions',
      headers: { 'content-type': 'application/json', 'x-api-key': app.key },
      body: JSON.stringify({ model: 'm', messages: MESSAGES, max_tokens: 16 }),
      upstream: a.url,
    });
    assert.equal(r.status, 200);
    assert.equal(r.destination, undefined);
    assert.equal(r.metadataDestination, undefined);
    assert.equal(r.upstream!.headers['x-tollgate-app-id'], app.appId);
    assert.equal(r.upstream!.headers['x-api-key'], undefined);
    assert.equal(JSON.parse(r.upstream!.body.toString()).model, 'm');
    const denied = await envoyExchange(`127.0.0.1:${pdp.port}`, { path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: MESSAGES }) });
    assert.equal(denied.status, 401);
  });

  test('endpoint picker: routes without asking for credentials, and leaves them alone', async () => {
    const r = await envoyExchange(`127.0.0.1:${epp.port}`, {
      path: '/v1/chat/completions',
      headers: { 'content-type': 'application/json', 'x-api-key': 'not-checked-here' },
      body: JSON.stringify({ model: 'm', messages: MESSAGES }),
    });
    assert.equal(r.status, 200);
    assert.equal(r.destination, address_(a));
    assert.equal(r.upstream!.headers['x-api-key'], 'not-checked-here');
    assert.equal(r.upstream!.headers['x-tollgate-app-id'], undefined);
    assert.equal(JSON.parse(r.upstream!.body.toString()).model, 'm-base');
  });
});

describe('health and transport', () => {
  const Health = makeGenericClientConstructor(healthService(), 'Health');
  type HealthClient = Client & {
    Check(req: { service: string }, cb: (err: ServiceError | null, res?: { status: number }) => void): void;
    Watch(req: { service: string }): ClientReadableStream<{ status: number }>;
  };
  const check = (c: HealthClient, service: string) =>
    new Promise<{ code: number; status?: number }>((resolve) => c.Check({ service }, (err, res) => resolve({ code: err?.code ?? status.OK, status: res?.status })));

  test('grpc.health.v1: Check and Watch; NOT_SERVING once shutdown begins', async () => {
    const server = await startExtprocServer({ dataPlane: gw.dataPlane, logger: silentLogger }, { port: 0, host: '127.0.0.1' });
    const hc = new Health(`127.0.0.1:${server.port}`, credentials.createInsecure()) as unknown as HealthClient;
    try {
      assert.deepEqual(await check(hc, ''), { code: status.OK, status: 1 });
      assert.deepEqual(await check(hc, EXT_PROC_SERVICE), { code: status.OK, status: 1 });
      // The Endpoint Picker Protocol's names, as the Inference Extension's manifests and probes ask for them.
      assert.deepEqual(await check(hc, 'liveness'), { code: status.OK, status: 1 });
      assert.deepEqual(await check(hc, 'readiness'), { code: status.OK, status: 1 });
      assert.equal((await check(hc, 'no.such.Service')).code, status.NOT_FOUND);
      const watched = ['', 'readiness', 'liveness'].map((service) => {
        const seen: number[] = [];
        const watch = hc.Watch({ service });
        const ended = new Promise<void>((resolve) => {
          watch.on('data', (m) => seen.push(m.status));
          watch.on('end', () => resolve());
          watch.on('error', () => resolve());
        });
        return { seen, ended };
      });
      for (const w of watched) await until(async () => w.seen.length, (n) => n >= 1, 2000, 'first Watch status');
      await server.close(200);
      await Promise.all(watched.map((w) => w.ended));
      assert.deepEqual(watched[0].seen, [1, 2], 'SERVING, then NOT_SERVING');
      assert.deepEqual(watched[1].seen, [1, 2], 'readiness follows the server');
      assert.deepEqual(watched[2].seen, [1], 'live until the process ends');
    } finally {
      hc.close();
      // Closed already unless an assertion failed first: an open server would hold the test process.
      await server.close(0);
    }
  });

  // Before: the drain closed the listener at once, so no Check could be made: a gRPC liveness probe failed (connection
  // refused) for the whole shutdownGracePeriod, and NOT_SERVING was never seen but by a Watch already open.
  test('during the shutdown drain the port answers health checks (NOT_SERVING, liveness SERVING) and refuses new streams', async () => {
    const server = await startExtprocServer({ dataPlane: gw.dataPlane, logger: silentLogger }, { port: 0, host: '127.0.0.1' });
    const target = `127.0.0.1:${server.port}`;
    const envoy = new ExtprocClient({ address: target });
    // Clients of their own: new connections, as a probe's (the drain sent GOAWAY on the ones open before it).
    const hc = new Health(target, credentials.createInsecure()) as unknown as HealthClient;
    const late = new ExtprocClient({ address: target });
    try {
      const held = envoy.open(10_000);
      void held.send({ request_headers: { headers: { headers: [{ key: ':method', raw_value: Buffer.from('POST') }, { key: ':path', raw_value: Buffer.from('/v1/chat/completions') }] }, end_of_stream: false } }).catch(() => {});
      await until(async () => server.streams, (n) => n === 1, 2000, 'the stream open');
      const drained = server.drain(10_000);
      assert.deepEqual(await check(hc, ''), { code: status.OK, status: 2 });
      assert.deepEqual(await check(hc, 'readiness'), { code: status.OK, status: 2 });
      assert.deepEqual(await check(hc, 'liveness'), { code: status.OK, status: 1 });
      await assert.rejects(late.open(5000).send({ request_headers: { headers: { headers: [] }, end_of_stream: true } }), (err: Error & { reason?: string }) => err.reason === 'unavailable' && /shutting down/.test(err.message));
      assert.equal(server.streams, 1, 'the stream in progress goes on');
      held.end();
      await drained;
    } finally {
      hc.close();
      envoy.close();
      late.close();
      await server.close(0);
    }
  });

  test('TLS with client certificates (mTLS): a client with a certificate is served, one without is refused', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-extproc-tls-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const f = (n: string) => join(dir, n);
    const ssl = (args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
    ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '1', '-subj', '/CN=test-ca']);
    for (const [name, ext] of [['server', 'subjectAltName=IP:127.0.0.1'], ['client', 'extendedKeyUsage=clientAuth']]) {
      ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${name}`]);
      execFileSync('sh', ['-c', `printf '%s\\n' '${ext}' > ${f(`${name}.ext`)}`]);
      ssl(['x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${name}.pem`), '-days', '1', '-extfile', f(`${name}.ext`)]);
    }
    assert.ok(readFileSync(f('client.pem')).length > 0);
    const server = await startExtprocServer({ dataPlane: gw.dataPlane, logger: silentLogger }, { port: 0, host: '127.0.0.1', tls: { cert: f('server.pem'), key: f('server.key'), ca: f('ca.pem') } });
    const target = `127.0.0.1:${server.port}`;
    const models = { request_headers: { headers: { headers: [{ key: ':method', raw_value: Buffer.from('GET') }, { key: ':path', raw_value: Buffer.from('/v1/models') }, { key: 'x-api-key', raw_value: Buffer.from(app.key) }] }, end_of_stream: true } };
    const good = new ExtprocClient({ address: target, tls: readExtensionTls({ ca: f('ca.pem'), cert: f('client.pem'), key: f('client.key') }) });
    const call = good.open(5000);
    const answer = await call.send(models);
    assert.equal(answer.immediate_response?.status.code, 200);
    call.end();
    const anonymous = new ExtprocClient({ address: target, tls: readExtensionTls({ ca: f('ca.pem') }) });
    await assert.rejects(anonymous.open(5000).send(models), (err: Error & { reason?: string }) => err.reason === 'unavailable' || err.reason === 'error');
    good.close();
    anonymous.close();
    await server.close(100);
  });
});
