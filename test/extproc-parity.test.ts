// The done-when test of ext_proc: each request runs both ways — through the HTTP data plane, and through the ext_proc
// listener with a gRPC client playing Envoy (which then forwards to the chosen endpoint itself) — and must get the
// same decision: status, fault code, chosen endpoint and counted requests and tokens.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { request } from 'undici';
import { loadConfig } from '../src/config/load.js';
import { gatewayError } from '../src/gateway/errors.js';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { startExtprocServer, type ExtprocServer } from '../src/extproc/server.js';
import { silentLogger } from '../src/lib/logger.js';
import { RoundRobinPicker } from '../src/scheduler/round-robin.js';
import type { PickRequest } from '../src/scheduler/types.js';
import { awayFromWindowEdge, createApp, quotaReport, untilKeyKnown, type IssuedApp } from './helpers/apim-admin.js';
import { closeEnvoyClients, envoyExchange } from './helpers/extproc-envoy.js';
import { manifest, settings } from './helpers/manifests.js';
import { sleep, startStub, type Stub } from './helpers/stub-upstream.js';
import { bareDataPlane } from './helpers/bare-data-plane.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const MAX_BODY = 4096;
const HOUR = 3_600_000;

interface Case {
  name: string;
  status: number;
  code?: string;
  key: 'none' | 'bad' | 'app';
  product?: 'gold' | 'tight';
  /** Requests spent first (same way), e.g. to use up a quota. */
  prime?: number;
  model?: string;
  /** The raw body, when not a chat request for `model`. */
  body?: string;
}

const CASES: Case[] = [
  { name: 'no key', status: 401, code: 'steps.oauth.v2.FailedToResolveAPIKey', key: 'none' },
  { name: 'bad key', status: 401, code: 'oauth.v2.InvalidApiKey', key: 'bad' },
  { name: 'unknown model', status: 404, code: 'model_not_found', key: 'app', model: 'nope' },
  { name: 'model not entitled', status: 401, code: 'oauth.v2.InvalidApiKeyForGivenResource', key: 'app', model: 'other' },
  { name: 'quota exceeded', status: 429, code: 'policies.ratelimit.QuotaViolation', key: 'app', product: 'tight', prime: 1 },
  { name: 'success, tokens counted', status: 200, key: 'app' },
  { name: 'body without model', status: 400, code: 'missing_model', key: 'app', body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }) },
  { name: 'malformed JSON', status: 400, code: 'invalid_json', key: 'app', body: '{"model": "chat", "messages": [' },
  { name: 'body too large', status: 413, code: 'body_too_large', key: 'app', body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'x'.repeat(MAX_BODY) }] }) },
];

interface Seen {
  status: number;
  code: string | undefined;
  endpoint: string | undefined;
  requests?: number | null;
  tokens?: number | null;
}

let stub: Stub;
let gw: Gateway;

function codeOf(body: Buffer | string): string | undefined {
  try {
    const b = JSON.parse(body.toString());
    return b.error?.code ?? b.fault?.detail?.errorcode;
  } catch {
    return undefined;
  }
}

const bodyOf = (c: Case) => c.body ?? JSON.stringify({ model: c.model ?? 'chat', messages: [{ role: 'user', content: 'Hello, parity.' }], max_tokens: 8 });
const stubAddress = () => `127.0.0.1:${stub.port}`;

async function viaHttp(c: Case, headers: Record<string, string>): Promise<Seen> {
  const before = stub.requests.length;
  const r = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: bodyOf(c) });
  const body = Buffer.from(await r.body.arrayBuffer());
  // One endpoint: the stub saw the request exactly when the data plane picked it.
  return { status: r.statusCode, code: codeOf(body), endpoint: stub.requests.length > before ? stubAddress() : undefined };
}

async function viaExtproc(c: Case, headers: Record<string, string>): Promise<Seen> {
  const r = await envoyExchange(`127.0.0.1:${gw.extprocPort}`, { path: '/v1/chat/completions', headers: { 'content-type': 'application/json', ...headers }, body: bodyOf(c) });
  return { status: r.status, code: codeOf(r.body), endpoint: r.local ? undefined : r.destination };
}

async function counted(app: IssuedApp | undefined): Promise<Pick<Seen, 'requests' | 'tokens'>> {
  if (!app) return {};
  // Settling the token reservation runs after the answer; let it land.
  await sleep(100);
  const set = (await quotaReport(gw.url, app.key)).body.products[0].operationSets[0];
  return { requests: set.quota?.used ?? null, tokens: set.llmTokenQuota?.used ?? null };
}

async function run(c: Case, way: typeof viaHttp): Promise<Seen> {
  let app: IssuedApp | undefined;
  let headers: Record<string, string> = {};
  if (c.key === 'bad') headers = { 'x-api-key': `tg_${'0'.repeat(40)}` };
  if (c.key === 'app') {
    app = await createApp(gw.adminUrl, [c.product ?? 'gold'], 'parity');
    await untilKeyKnown(gw.url, app.key);
    headers = { authorization: `Bearer ${app.key}` };
  }
  for (let i = 0; i < (c.prime ?? 0); i++) assert.equal((await way({ ...c, body: undefined, model: 'chat' }, headers)).status, 200, 'priming');
  const seen = await way(c, headers);
  return { ...seen, ...(await counted(app)) };
}

before(async () => {
  stub = await startStub();
  const ref = [{ name: 'ext', kind: 'APIMExtensionPolicy', group: 'apim.googleapis.com' }];
  const tokens = { limit: 100_000, interval: 1, timeUnit: 'hour', countOn: 'total' };
  gw = await startGateway({
    configPaths: [],
    manifests: [
      settings({ server: { maxBodyBytes: MAX_BODY } }),
      manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate' } }),
      manifest('APIProduct', 'gold', { displayName: 'Gold', approvalType: 'auto', enforcementRefs: ref }),
      manifest('APIOperationSet', 'gold-ops', { apiProductRefs: [{ name: 'gold' }], quota: { limit: 1000, interval: 1, timeUnit: 'hour' }, llmOperations: { models: ['chat'], llmTokenQuota: tokens } }),
      manifest('APIProduct', 'tight', { displayName: 'Tight', approvalType: 'auto', enforcementRefs: ref }),
      manifest('APIOperationSet', 'tight-ops', { apiProductRefs: [{ name: 'tight' }], quota: { limit: 1, interval: 1, timeUnit: 'hour' }, llmOperations: { models: ['chat'], llmTokenQuota: tokens } }),
      manifest('InferencePool', 'pool', { endpoints: [stub.url] }),
      manifest('InferenceModel', 'chat', { modelName: 'chat', poolRef: { name: 'pool' } }),
      manifest('InferenceModel', 'other', { modelName: 'other', poolRef: { name: 'pool' } }),
    ],
    ...LOOPBACK,
    extprocPort: 0,
  });
  // The quota case must not straddle the edge of its hourly window.
  await awayFromWindowEdge(HOUR, 30_000);
});

after(async () => {
  closeEnvoyClients();
  await gw?.close();
  await stub?.close();
});

describe('the same decision through the data plane and through ext_proc', () => {
  for (const c of CASES) {
    test(`${c.name} → ${c.status}${c.code ? ` ${c.code}` : ''}`, async () => {
      const http = await run(c, viaHttp);
      const extproc = await run(c, viaExtproc);
      assert.equal(http.status, c.status, `http: ${JSON.stringify(http)}`);
      assert.equal(http.code, c.code);
      assert.deepEqual(extproc, http);
      if (c.status === 200) {
        assert.equal(extproc.endpoint, stubAddress());
        assert.equal(extproc.tokens, 12, 'the usage of the answer, counted once');
        assert.equal(extproc.requests, 1);
      }
    });
  }
});

describe('shed under saturation', () => {
  // The gateway's picker never sheds; a picker that refuses sheddable work stands in for a saturated pool.
  class SaturatedPicker extends RoundRobinPicker {
    override pick(req: PickRequest) {
      if (req.priority < 0) throw gatewayError('TG_ERR_REQUEST_SHED');
      return super.pick(req);
    }
  }
  let http: Server;
  let extproc: ExtprocServer;
  let httpUrl: string;

  before(async () => {
    const config = loadConfig([], [
      manifest('InferencePool', 'pool', { endpoints: [stub.url] }),
      manifest('InferenceModel', 'batch', { modelName: 'batch', poolRef: { name: 'pool' }, criticality: 'Sheddable' }),
      manifest('InferenceModel', 'chat', { modelName: 'chat', poolRef: { name: 'pool' }, criticality: 'Critical' }),
    ]);
    const dataPlane = bareDataPlane(config, new SaturatedPicker());
    http = createServer(dataPlane.handle);
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    httpUrl = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
    extproc = await startExtprocServer({ dataPlane, logger: silentLogger }, { port: 0, host: '127.0.0.1' });
  });
  after(async () => {
    http.close();
    await extproc.close(100);
  });

  for (const [model, status, code] of [['batch', 429, 'request_shed'], ['chat', 200, undefined]] as const) {
    test(`${model} → ${status}${code ? ` ${code}` : ''}`, async () => {
      const body = JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] });
      const r = await request(`${httpUrl}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const viaHttp = { status: r.statusCode, code: codeOf(Buffer.from(await r.body.arrayBuffer())), retryAfter: r.headers['retry-after'] !== undefined };
      const e = await envoyExchange(`127.0.0.1:${extproc.port}`, { path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body });
      const viaExtproc = { status: e.status, code: codeOf(e.body), retryAfter: e.headers['retry-after'] !== undefined };
      assert.deepEqual(viaExtproc, viaHttp);
      assert.equal(viaHttp.status, status);
      assert.equal(viaHttp.code, code);
    });
  }
});
