// API management end to end on one gateway: keys from the admin API, faults, quotas, token quotas, revocation,
// approval, expiry, fault format, and no secret in the logs — one suite, run by test/apim-gateway.test.ts on SQLite
// with memory counters and by test/apim-gateway-postgres-redis.test.ts on PostgreSQL with Redis counters.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { pino } from 'pino';
import { request } from 'undici';
import { startGateway, type Gateway } from '../../src/gateway/gateway.js';
import type { Manifest } from '../../src/config/manifest.js';
import { countChatTokens } from '../../src/lib/tokenizer.js';
import { startSimFleet, type SimFleet } from '../../src/sim/index.js';
import { appPath, awayFromWindowEdge, call, codeOf, createApp, quotaReport, until, untilKeyKnown, type Answer, type IssuedApp } from './apim-admin.js';
import { manifest } from './manifests.js';
import { startStub, type Stub } from './stub-upstream.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../../src/store/test-databases.js';
import { COUNTER_BACKENDS } from '../../src/store/counters/test-counter-stores.js';
import { LOOPBACK } from './loopback-gateway.js';
import { deleteKeysAt } from '../../src/store/caches/redis.js';

/** Requests per app per minute on the gold product. */
const QUOTA = 5;
/** Tokens per app per hour on the gold product. */
const TOKENS = 100_000;
const SPIKE_BURST = 20;
const MINUTE = 60_000;

const F = {
  noKey: 'steps.oauth.v2.FailedToResolveAPIKey',
  invalidKey: 'oauth.v2.InvalidApiKey',
  notApproved: 'oauth.v2.ApiKeyNotApproved',
  expired: 'keymanagement.service.consumer_key_expired',
  appNotApproved: 'keymanagement.service.invalid_client-app_not_approved',
  notEntitled: 'oauth.v2.InvalidApiKeyForGivenResource',
  quota: 'policies.ratelimit.QuotaViolation',
  spike: 'policies.ratelimit.SpikeArrestViolation',
} as const;

/** Every log line of every gateway in this file, to prove no secret reaches them. */
const logLines: string[] = [];
/** Every key and secret this file issued or sent. */
const secrets: string[] = [];
const logger = () => pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });

function extension(spec: Record<string, unknown> = {}): Manifest {
  return manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate', kind: 'Gateway' }, ...spec });
}

/** Gold (auto approval: request and token quotas, chat and echo only), premium (manual approval), a per-app spike arrest. */
function apimManifests(enforced = true): Manifest[] {
  const enforcementRefs = enforced ? [{ name: 'ext', kind: 'APIMExtensionPolicy', group: 'apim.googleapis.com' }] : [];
  return [
    manifest('APIProduct', 'gold', { displayName: 'Gold', approvalType: 'auto', enforcementRefs }),
    manifest('APIOperationSet', 'gold-ops', {
      apiProductRefs: [{ name: 'gold' }],
      quota: { limit: QUOTA, interval: 1, timeUnit: 'minute' },
      restOperations: [{ name: 'openai', path: '/v1/**', methods: ['GET', 'POST'] }],
      llmOperations: { models: ['chat', 'echo'], llmTokenQuota: { limit: TOKENS, interval: 1, timeUnit: 'hour', countOn: 'total' } },
    }),
    manifest('APIProduct', 'premium', { displayName: 'Premium', approvalType: 'manual', enforcementRefs }),
    manifest('APIOperationSet', 'premium-ops', { apiProductRefs: [{ name: 'premium' }], llmOperations: { models: ['chat', 'echo'] } }),
    // A whole minute's allowance may arrive at once; `x-weight` lets a test spend it in one request.
    manifest('SpikeArrest', 'per-app-spike', {
      rate: `${SPIKE_BURST}pm`,
      useEffectiveCount: true,
      identifier: { ref: 'developer.app.id' },
      messageWeight: { ref: 'request.header.x-weight' },
    }),
    manifest('ApimTemplate', 'template', { templates: [{ policies: [{ kind: 'SpikeArrest', name: 'per-app-spike' }] }] }),
  ];
}

/** chat → the simulator; echo and other (granted by no product) → the stub, which echoes the body it got. */
function routing(simUrls: string[], stubUrl: string): Manifest[] {
  return [
    manifest('InferencePool', 'sim', { endpoints: simUrls }),
    manifest('InferencePool', 'stub', { endpoints: [stubUrl] }),
    manifest('InferenceModel', 'chat', { modelName: 'chat', poolRef: { name: 'sim' }, targetModels: [{ name: 'base-model', weight: 1 }] }),
    manifest('InferenceModel', 'echo', { modelName: 'echo', poolRef: { name: 'stub' } }),
    manifest('InferenceModel', 'other', { modelName: 'other', poolRef: { name: 'stub' } }),
  ];
}

export type SuiteBackend = 'sqlite+memory' | 'postgres+redis';

let backend: SuiteBackend = 'sqlite+memory';
/** What start() made on the shared servers (a schema and a Redis key prefix per gateway), removed at the end. */
const made: { databases: TestDatabase[]; redisPrefixes: string[]; dirs: string[] } = { databases: [], redisPrefixes: [], dirs: [] };
const REDIS_URL = process.env.REDIS_URL;

/** A gateway on the suite's backend: an in-memory SQLite database, or a fresh PostgreSQL schema and Redis key prefix of its own. */
async function start(manifests: Manifest[]): Promise<Gateway> {
  const common = { configPaths: [], manifests, ...LOOPBACK, logger: logger() };
  if (backend === 'sqlite+memory') return startGateway(common);
  const db = await DATABASE_BACKENDS.find((b) => b.name === 'postgres')!.create();
  made.databases.push(db);
  const redisKeyPrefix = `tollgate:test:${db.schema}:`;
  made.redisPrefixes.push(redisKeyPrefix);
  // A database that is not in memory gets usage records, whose spool directory is one pipeline's alone.
  const analyticsDir = mkdtempSync(join(tmpdir(), 'tollgate-apim-suite-'));
  made.dirs.push(analyticsDir);
  return startGateway({ ...common, db: db.url, dbSchema: db.schema, redis: REDIS_URL, redisKeyPrefix, analyticsDir });
}

/** Why the suite cannot run on `b` here (its servers are not configured), or undefined. */
function missing(b: SuiteBackend): string | undefined {
  if (b === 'sqlite+memory') return undefined;
  return DATABASE_BACKENDS.find((d) => d.name === 'postgres')!.skip ?? COUNTER_BACKENDS.find((c) => c.name === 'redis')!.skip;
}

const MESSAGES = [{ role: 'user', content: 'Hello, gateway.' }];

function chat(gw: Gateway, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Answer> {
  return call(gw.url, 'POST', '/v1/chat/completions', { model: 'echo', messages: MESSAGES, ...body }, headers);
}

const withKey = (key: string) => ({ 'x-api-key': key });

function assertFault(a: Answer, status: number, code: string, message?: string): void {
  assert.equal(a.status, status, `${message ?? code}: status (body ${JSON.stringify(a.body)})`);
  assert.equal(codeOf(a), code, message);
}


/** The whole suite on one backend, as a describe block (skipped, visibly, when the backend's servers are not configured). */
export function apimGatewaySuite(on: SuiteBackend): void {
  describe(`API management end to end on ${on}`, { skip: missing(on) }, () => {
    backend = on;

    let fleet: SimFleet;
    let stub: Stub;
    let gw: Gateway;

    /** A fresh app (own counters) whose key the data plane already knows. */
    async function freshApp(products = ['gold'], label = 'app'): Promise<IssuedApp> {
      const a = await createApp(gw.adminUrl, products, label);
      secrets.push(a.key, a.secret);
      await untilKeyKnown(gw.url, a.key);
      return a;
    }

    before(async () => {
      fleet = await startSimFleet({ replicas: 1, model: 'base-model', timeScale: 50 });
      stub = await startStub();
      gw = await start([extension(), ...apimManifests(), ...routing(fleet.urls, stub.url)]);
    });

    after(async () => {
      await gw?.close();
      await stub?.close();
      await fleet?.close();
    });

    describe('keys from the admin API', () => {
      let app: IssuedApp;
      before(async () => {
        app = await freshApp(['gold'], 'keys');
      });

      test('the app answer shows the key once, in the documented shape', async () => {
        assert.match(app.key, /^tg_[0-9A-Za-z]{40}$/);
        assert.equal(app.credential.status, 'approved');
        assert.deepEqual(app.credential.apiProducts, [{ apiproduct: 'gold', status: 'approved' }]);
        assert.equal(app.credential.expiresAt, -1);
        const read = await call(gw.adminUrl, 'GET', appPath(app));
        assert.equal(read.status, 200);
        assert.equal(read.body.credentials[0].keyId, app.keyId);
        assert.equal(read.body.credentials[0].consumerKey, undefined, 'a key is shown in the creation answer only');
        assert.ok(!JSON.stringify(read.body).includes(app.key));
      });

      test('x-api-key works', async () => {
        const r = await chat(gw, { max_tokens: 5 }, withKey(app.key));
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(r.body.echo.model, 'echo');
        const upstream = stub.requests.at(-1)!.req.headers;
        assert.equal(upstream['x-api-key'], undefined, 'the key never goes upstream');
        // Who is calling, for the model server: the same identity headers tollgate gives Envoy as a PDP.
        assert.equal(upstream['x-tollgate-app'], app.app);
        assert.equal(upstream['x-tollgate-app-id'], app.appId);
      });

      test('the model list shows the models the key may use; one it may not is a 404 as if it did not exist', async () => {
        const list = await call(gw.url, 'GET', '/v1/models', undefined, withKey(app.key));
        assert.equal(list.status, 200);
        assert.deepEqual(list.body.data.map((m: { id: string }) => m.id).sort(), ['chat', 'echo'], 'other is granted by no product');
        assert.equal((await call(gw.url, 'GET', '/v1/models/chat', undefined, withKey(app.key))).body.id, 'chat');
        assertFault(await call(gw.url, 'GET', '/v1/models/other', undefined, withKey(app.key)), 404, 'model_not_found');
        assertFault(await call(gw.url, 'GET', '/v1/models'), 401, 'steps.oauth.v2.FailedToResolveAPIKey');
      });

      test('a client cannot pass identity headers off as its own to the model server', async () => {
        const r = await chat(gw, { max_tokens: 5 }, { ...withKey(app.key), 'x-tollgate-app': 'someone-else', 'x-tollgate-developer': 'dev-0' });
        assert.equal(r.status, 200);
        const upstream = stub.requests.at(-1)!.req.headers;
        assert.equal(upstream['x-tollgate-app'], app.app);
        assert.notEqual(upstream['x-tollgate-developer'], 'dev-0');
      });

      test('Authorization: Bearer works (the openai SDK, unchanged)', async () => {
        const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: app.key, maxRetries: 0 });
        const r = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Hi there' }], max_tokens: 4 });
        assert.equal(r.usage!.completion_tokens, 4);
        const id = `bearer-${Date.now()}`;
        const echoed = await chat(gw, {}, { authorization: `Bearer ${app.key}`, 'x-request-id': id });
        assert.equal(echoed.status, 200, JSON.stringify(echoed.body));
        assert.equal(stub.requests.find((s) => s.req.headers['x-request-id'] === id)!.req.headers.authorization, undefined, 'the key never goes upstream');
        await assert.rejects(
          new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'tg_not-a-key', maxRetries: 0 }).chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'x' }] }),
          (err: any) => err.status === 401 && err.code === F.invalidKey,
        );
      });

      const cases: { name: string; model: string; key: 'none' | 'unknown' | 'valid'; bearer?: boolean; status: number; code: string }[] = [
        { name: 'missing key', model: 'echo', key: 'none', status: 401, code: F.noKey },
        { name: 'missing key on an unknown model (credentials before model lookup)', model: 'nope', key: 'none', status: 401, code: F.noKey },
        { name: 'unknown key', model: 'echo', key: 'unknown', status: 401, code: F.invalidKey },
        { name: 'unknown key as Bearer', model: 'echo', key: 'unknown', bearer: true, status: 401, code: F.invalidKey },
        { name: 'unknown key on an unknown model', model: 'nope', key: 'unknown', status: 401, code: F.invalidKey },
        { name: 'a model no product of the key grants', model: 'other', key: 'valid', status: 401, code: F.notEntitled },
        { name: 'a model no product of the key grants, as Bearer', model: 'other', key: 'valid', bearer: true, status: 401, code: F.notEntitled },
        { name: 'an unknown model with a valid key', model: 'nope', key: 'valid', status: 404, code: 'model_not_found' },
      ];
      for (const c of cases) {
        test(`${c.name} → ${c.status} ${c.code}`, async () => {
          const unknown = 'tg_' + 'x'.repeat(40);
          secrets.push(unknown);
          const key = c.key === 'valid' ? app.key : c.key === 'unknown' ? unknown : undefined;
          const headers: Record<string, string> = key === undefined ? {} : c.bearer ? { authorization: `Bearer ${key}` } : withKey(key);
          const r = await chat(gw, { model: c.model }, headers);
          assertFault(r, c.status, c.code);
          assert.equal(r.body.error.type, c.status === 401 ? 'authentication_error' : 'invalid_request_error');
          assert.ok(r.headers['x-request-id']);
        });
      }

      test('the usage records of refusals count the bytes of the answer tollgate gave', async () => {
        // Before: 0, as only a model server's bytes were counted (a cache hit, too).
        const stats = await until(
          () => call(gw.adminUrl, 'GET', '/v1/analytics/stats?metrics=requests,bytes_out&filter=status==401&bucket=1d'),
          (a) => (a.body?.rows?.[0]?.requests ?? 0) > 0,
          5000,
          'the refusals stored',
        );
        const { requests, bytes_out } = stats.body.rows[0] as { requests: number; bytes_out: number };
        assert.ok(bytes_out >= requests * 50, `${bytes_out} bytes for ${requests} refusals`);
      });
    });

    describe('quotas', () => {
      test(`a quota of ${QUOTA} a minute: the ${QUOTA + 1}th request is 429 QuotaViolation; successes carry x-ratelimit-*`, async () => {
        const app = await freshApp(['gold'], 'quota');
        // The product quota is calendar-aligned: keep the burst inside one minute.
        await awayFromWindowEdge(MINUTE, 5000);
        for (let i = 1; i <= QUOTA; i++) {
          const r = await chat(gw, { max_tokens: 10 }, withKey(app.key));
          assert.equal(r.status, 200, `request ${i}: ${JSON.stringify(r.body)}`);
          assert.equal(r.headers['x-ratelimit-limit-requests'], String(QUOTA));
          assert.equal(r.headers['x-ratelimit-remaining-requests'], String(QUOTA - i));
          assert.match(String(r.headers['x-ratelimit-reset-requests']), /^(\d+(\.\d+)?s|\d+ms|1m0s)$/);
          assert.equal(r.headers['x-ratelimit-limit-tokens'], String(TOKENS));
          assert.ok(Number(r.headers['x-ratelimit-remaining-tokens']) < TOKENS);
          assert.match(String(r.headers['x-ratelimit-reset-tokens']), /^(\d+m)?\d+(\.\d+)?s$|^1h0m0s$/);
        }
        const refused = await chat(gw, { max_tokens: 10 }, withKey(app.key));
        assertFault(refused, 429, F.quota);
        assert.equal(refused.body.error.type, 'rate_limit_error');
        const retryAfter = Number(refused.headers['retry-after']);
        assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `retry-after ${refused.headers['retry-after']}`);
        assert.equal(refused.headers['x-ratelimit-remaining-requests'], '0');

        // The self-service report: every request counted, nothing left; the refused one reserved no tokens.
        const report = await until(
          () => quotaReport(gw.url, app.key),
          (a) => a.body?.products?.[0]?.operationSets?.[0]?.llmTokenQuota?.used === QUOTA * 12,
          2000,
          'token usage of the stub (12 a request) reconciled',
        );
        assert.equal(report.status, 200);
        assert.equal(report.body.keyId, app.keyId);
        assert.equal(report.body.app.name, app.app);
        assert.equal(report.body.developer.email, app.email);
        const set = report.body.products[0].operationSets[0];
        assert.equal(report.body.products[0].name, 'gold');
        assert.equal(set.name, 'gold-ops');
        assert.deepEqual(set.models, ['chat', 'echo']);
        assert.deepEqual({ limit: set.quota.limit, used: set.quota.used, remaining: set.quota.remaining }, { limit: QUOTA, used: QUOTA, remaining: 0 });
        assert.equal(set.llmTokenQuota.remaining, TOKENS - QUOTA * 12);
        assert.equal(set.llmTokenQuota.countOn, 'total');
        assert.ok(!JSON.stringify(report.body).includes(app.key), 'the report does not echo the key');
      });

      test('the quota report shows what is left after each request', async () => {
        const app = await freshApp(['gold'], 'report');
        await awayFromWindowEdge(MINUTE, 3000);
        const before = await quotaReport(gw.url, app.key);
        assert.equal(before.body.products[0].operationSets[0].quota.remaining, QUOTA);
        assert.equal((await chat(gw, {}, withKey(app.key))).status, 200);
        const afterOne = await quotaReport(gw.url, app.key);
        assert.equal(afterOne.body.products[0].operationSets[0].quota.remaining, QUOTA - 1);
        assert.equal(afterOne.body.products[0].operationSets[0].quota.used, 1);
      });

      test('the spike arrest of the ApimTemplate refuses before the quota spends anything', async () => {
        const app = await freshApp(['gold'], 'spike');
        await awayFromWindowEdge(MINUTE, 3000);
        const heavy = await chat(gw, {}, { ...withKey(app.key), 'x-weight': String(SPIKE_BURST) });
        assert.equal(heavy.status, 200, JSON.stringify(heavy.body));
        const refused = await chat(gw, {}, withKey(app.key));
        assertFault(refused, 429, F.spike);
        assert.ok(Number(refused.headers['retry-after']) >= 1);
        const report = await quotaReport(gw.url, app.key);
        assert.equal(report.body.products[0].operationSets[0].quota.used, 1, 'the refused request spent no quota');
      });
    });

    describe('LLM token quota', () => {
      test('a request without max_tokens gets one upstream; the client\'s own goes unchanged; a stream asks for usage', async () => {
        const app = await freshApp(['gold'], 'cap');
        const cases: { name: string; body: Record<string, unknown>; upstream: Record<string, unknown> }[] = [
          { name: 'no max_tokens', body: {}, upstream: { max_completion_tokens: 4096, max_tokens: undefined } },
          { name: 'the client\'s max_tokens', body: { max_tokens: 33 }, upstream: { max_tokens: 33 } },
          { name: 'a stream without stream_options', body: { max_tokens: 3, stream: true }, upstream: { max_tokens: 3, stream_options: { include_usage: true } } },
        ];
        for (const c of cases) {
          const id = `cap-${Math.random().toString(36).slice(2)}`;
          const r = await chat(gw, c.body, { ...withKey(app.key), 'x-request-id': id });
          assert.equal(r.status, 200, `${c.name}: ${JSON.stringify(r.body)}`);
          const seen = stub.requests.find((s) => s.req.headers['x-request-id'] === id);
          assert.ok(seen, `${c.name}: reached the stub`);
          for (const [field, value] of Object.entries(c.upstream)) assert.deepEqual(seen.body[field], value, `${c.name}: upstream ${field}`);
        }
      });

      test('a stream without stream_options gets no usage chunk, and the token counter holds the real usage', async () => {
        const app = await freshApp(['gold'], 'stream');
        await awayFromWindowEdge(MINUTE, 3000);
        const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: app.key, maxRetries: 0 });
        const { data: first, response } = await client.chat.completions
          .create({ model: 'chat', messages: [{ role: 'user', content: 'First, not streamed.' }], max_tokens: 6 })
          .withResponse();
        assert.equal(first.usage!.completion_tokens, 6);
        assert.equal(response.headers.get('x-ratelimit-limit-tokens'), String(TOKENS));

        const messages = [{ role: 'user' as const, content: 'Then a stream, without asking for usage.' }];
        const maxTokens = 10;
        const stream = await client.chat.completions.create({ model: 'chat', messages, max_tokens: maxTokens, stream: true });
        let text = '';
        let chunks = 0;
        for await (const chunk of stream) {
          chunks++;
          text += chunk.choices[0]?.delta?.content ?? '';
          assert.ok(chunk.choices.length > 0, 'no usage-only chunk (choices: [])');
          assert.ok(!chunk.usage, 'no chunk carries usage');
        }
        assert.ok(chunks > 0 && text.length > 0);

        const expected = first.usage!.total_tokens + countChatTokens(messages) + maxTokens;
        const report = await until(
          () => quotaReport(gw.url, app.key),
          (a) => a.body?.products?.[0]?.operationSets?.[0]?.llmTokenQuota?.used === expected,
          2000,
          `token counter at the real usage (${expected})`,
        );
        assert.equal(report.body.products[0].operationSets[0].llmTokenQuota.remaining, TOKENS - expected);
        assert.equal(report.body.products[0].operationSets[0].quota.used, 2);
      });

      test('a compressed answer: a stream whose usage must be stripped is a 502 naming the encoding; JSON nobody changes passes as it came', async () => {
        const app = await freshApp(['gold'], 'gzip');
        const json = JSON.stringify({ id: 'x', choices: [], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } });
        const original = stub.handler;
        // A model server that compresses although tollgate asks for identity (or a proxy in front of it).
        stub.handler = ({ res, body }) => {
          const streamed = (body as { stream?: boolean }).stream === true;
          const payload = gzipSync(streamed ? `data: ${json}\n\ndata: [DONE]\n\n` : json);
          res.writeHead(200, { 'content-type': streamed ? 'text/event-stream' : 'application/json', 'content-encoding': 'gzip', 'content-length': payload.length });
          res.end(payload);
        };
        try {
          // Before: the gzip bytes were rewritten as UTF-8 text, a body no client could decompress.
          const streamed = await chat(gw, { stream: true }, withKey(app.key));
          assertFault(streamed, 502, 'upstream_error');
          assert.match(streamed.body.error.message, /content-encoding: gzip/);
          const plain = await request(`${gw.url}/v1/chat/completions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...withKey(app.key) },
            body: JSON.stringify({ model: 'echo', messages: MESSAGES }),
          });
          assert.equal(plain.statusCode, 200);
          assert.equal(plain.headers['content-encoding'], 'gzip');
          assert.equal(gunzipSync(Buffer.from(await plain.body.arrayBuffer())).toString(), json);
        } finally {
          stub.handler = original;
        }
      });

      test('a stream that asks for usage keeps its usage chunk, and is counted once', async () => {
        const app = await freshApp(['gold'], 'stream-usage');
        const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: app.key, maxRetries: 0 });
        const messages = [{ role: 'user' as const, content: 'Stream, with usage.' }];
        const stream = await client.chat.completions.create({ model: 'chat', messages, max_tokens: 7, stream: true, stream_options: { include_usage: true } });
        let last: OpenAI.Chat.Completions.ChatCompletionChunk | undefined;
        for await (const chunk of stream) last = chunk;
        assert.deepEqual(last!.choices, []);
        assert.deepEqual({ prompt: last!.usage!.prompt_tokens, completion: last!.usage!.completion_tokens }, { prompt: countChatTokens(messages), completion: 7 });
        await until(
          () => quotaReport(gw.url, app.key),
          (a) => a.body?.products?.[0]?.operationSets?.[0]?.llmTokenQuota?.used === last!.usage!.total_tokens,
          2000,
          'token counter at the reported usage',
        );
      });

      test('a stream without stream_options looks as if tollgate had not asked for usage (no "usage" key in any chunk)', async () => {
        const app = await freshApp(['gold'], 'stream-raw');
        const res = await request(`${gw.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...withKey(app.key) },
          body: JSON.stringify({ model: 'chat', messages: MESSAGES, max_tokens: 4, stream: true }),
        });
        assert.equal(res.statusCode, 200);
        const events = (await res.body.text())
          .split('\n\n')
          .map((e) => e.replace(/^data: /, '').trim())
          .filter((e) => e !== '' && e !== '[DONE]')
          .map((e) => JSON.parse(e) as Record<string, unknown>);
        assert.ok(events.length > 0);
        assert.ok(events.every((e) => Array.isArray(e.choices) && e.choices.length > 0), 'no usage-only chunk');
        // A client that did not ask for usage must not see that tollgate asked for it: no `"usage": null` either.
        assert.ok(
          events.every((e) => !('usage' in e)),
          'chunks carry "usage" although the client did not ask for usage',
        );
      });
    });

    describe('key, app and product lifecycle', () => {
      const refusals: { name: string; change: (a: IssuedApp) => [method: string, path: string]; code: string }[] = [
        { name: 'a revoked key', change: (a) => ['POST', appPath(a, `/keys/${a.keyId}?action=revoke`)], code: F.notApproved },
        { name: 'a revoked app', change: (a) => ['POST', appPath(a, '?action=revoke')], code: F.appNotApproved },
        { name: 'a revoked (inactive) developer', change: (a) => ['POST', `/v1/developers/${encodeURIComponent(a.email)}?action=revoke`], code: F.appNotApproved },
        { name: 'a deleted key', change: (a) => ['DELETE', appPath(a, `/keys/${a.keyId}`)], code: F.invalidKey },
      ];
      for (const c of refusals) {
        test(`${c.name} is refused with ${c.code} within 1 s`, async () => {
          const app = await freshApp(['gold'], 'lifecycle');
          assert.equal((await chat(gw, {}, withKey(app.key))).status, 200);
          const t0 = performance.now();
          const [method, path] = c.change(app);
          const changed = await call(gw.adminUrl, method, path);
          assert.equal(changed.status, 200, JSON.stringify(changed.body));
          await until(() => quotaReport(gw.url, app.key), (a) => codeOf(a) === c.code, 1000, `${c.name} refused`);
          const ms = performance.now() - t0;
          assert.ok(ms <= 1000, `refused after ${ms} ms`);
          assertFault(await chat(gw, {}, withKey(app.key)), 401, c.code);
        });
      }

      test('an admin change is served by this gateway once answered: a new key works at once, a revoked one is refused at once', async () => {
        // Before: on PostgreSQL the first request after the answer that issued a key got 401 in 16 of 16 tries (the
        // snapshot reload was still running), and a revoked key was served once more.
        for (let i = 0; i < 5; i++) {
          const app = await createApp(gw.adminUrl, ['gold'], `at-once-${i}`);
          secrets.push(app.key, app.secret);
          assert.equal((await chat(gw, {}, withKey(app.key))).status, 200, `try ${i}: the new key`);
          assert.equal((await call(gw.adminUrl, 'POST', appPath(app, `/keys/${app.keyId}?action=revoke`))).status, 200);
          assertFault(await chat(gw, {}, withKey(app.key)), 401, F.notApproved, `try ${i}: the revoked key`);
        }
      });

      test('a revoked app works again once approved', async () => {
        const app = await freshApp(['gold'], 'reapprove');
        assert.equal((await call(gw.adminUrl, 'POST', appPath(app, '?action=revoke'))).body.status, 'revoked');
        await until(() => quotaReport(gw.url, app.key), (a) => codeOf(a) === F.appNotApproved, 1000, 'revoked app refused');
        assert.equal((await call(gw.adminUrl, 'POST', appPath(app, '?action=approve'))).body.status, 'approved');
        await until(() => quotaReport(gw.url, app.key), (a) => a.status === 200, 1000, 'approved app accepted');
        assert.equal((await chat(gw, {}, withKey(app.key))).status, 200);
      });

      test('a product with approvalType manual is pending on a new key until approved on it', async () => {
        const app = await freshApp(['premium'], 'manual');
        assert.deepEqual(app.credential.apiProducts, [{ apiproduct: 'premium', status: 'pending' }]);
        assert.equal(app.credential.status, 'approved', 'the key itself is approved');
        assertFault(await chat(gw, {}, withKey(app.key)), 401, F.notEntitled, 'a pending product grants nothing');
        const approved = await call(gw.adminUrl, 'POST', appPath(app, `/keys/${app.keyId}/apiproducts/premium?action=approve`));
        assert.equal(approved.status, 200, JSON.stringify(approved.body));
        assert.deepEqual(approved.body.apiProducts, [{ apiproduct: 'premium', status: 'approved' }]);
        const r = await until(() => chat(gw, {}, withKey(app.key)), (a) => a.status !== 401, 1000, 'approved product grants');
        assert.equal(r.status, 200, JSON.stringify(r.body));
      });

      test('a key that expired is refused with consumer_key_expired', async () => {
        const app = await freshApp(['gold'], 'expiry');
        const issued = await call(gw.adminUrl, 'POST', appPath(app, '/keys'), { expiresInSeconds: 1 });
        assert.equal(issued.status, 201, JSON.stringify(issued.body));
        const key: string = issued.body.consumerKey;
        secrets.push(key, issued.body.consumerSecret);
        assert.ok(issued.body.expiresAt > Date.now() && issued.body.expiresAt <= Date.now() + 1000, `expiresAt ${issued.body.expiresAt}`);
        assert.deepEqual(issued.body.apiProducts, [{ apiproduct: 'gold', status: 'approved' }], 'a new key gets the app\'s products');
        // Before it expires the key works (or is not known yet); afterwards it is refused as expired, never as unknown.
        const seen = new Set<string>();
        await until(
          () => quotaReport(gw.url, key),
          (a) => {
            seen.add(a.status === 200 ? '200' : String(codeOf(a)));
            return codeOf(a) === F.expired;
          },
          4000,
          'expired key refused',
          50,
        );
        for (const s of seen) assert.ok(['200', F.invalidKey, F.expired].includes(s), `unexpected answer ${s}`);
        assertFault(await chat(gw, {}, withKey(key)), 401, F.expired);
        assert.equal((await chat(gw, {}, withKey(app.key))).status, 200, 'the app\'s other key still works');
      });
    });

    describe('faultFormat: apigee', () => {
      let apigee: Gateway;
      before(async () => {
        apigee = await start([extension({ faultFormat: 'apigee' }), ...apimManifests(), ...routing(fleet.urls, stub.url)]);
      });
      after(() => apigee?.close());

      const cases: { name: string; headers: Record<string, string>; model: string; status: number; code: string }[] = [
        { name: 'missing key', headers: {}, model: 'echo', status: 401, code: F.noKey },
        { name: 'unknown key', headers: withKey('tg_' + 'y'.repeat(40)), model: 'echo', status: 401, code: F.invalidKey },
        { name: 'missing key on an unknown model', headers: {}, model: 'nope', status: 401, code: F.noKey },
      ];
      for (const c of cases) {
        test(`${c.name} → {"fault":{"faultstring","detail":{"errorcode":"${c.code}"}}}`, async () => {
          if (c.headers['x-api-key']) secrets.push(c.headers['x-api-key']);
          const r = await chat(apigee, { model: c.model }, c.headers);
          assert.equal(r.status, c.status);
          // Apigee's shape, and OpenAI's beside it (the OpenAI SDKs read only `error`), saying the same.
          assert.deepEqual(Object.keys(r.body), ['fault', 'error']);
          assert.equal(typeof r.body.fault.faultstring, 'string');
          assert.ok(r.body.fault.faultstring.length > 0);
          assert.deepEqual(r.body.fault.detail, { errorcode: c.code });
          assert.deepEqual([r.body.error.code, r.body.error.message], [c.code, r.body.fault.faultstring]);
        });
      }

      test('a quota violation in the Apigee shape, with retry-after', async () => {
        const app = await createApp(apigee.adminUrl, ['gold'], 'apigee-quota');
        secrets.push(app.key, app.secret);
        await untilKeyKnown(apigee.url, app.key);
        await awayFromWindowEdge(MINUTE, 5000);
        for (let i = 0; i < QUOTA; i++) assert.equal((await chat(apigee, {}, withKey(app.key))).status, 200);
        const r = await chat(apigee, {}, withKey(app.key));
        assert.equal(r.status, 429);
        assert.deepEqual(r.body.fault.detail, { errorcode: F.quota });
        assert.ok(Number(r.headers['retry-after']) >= 1);
      });
    });

    describe('without an APIMExtensionPolicy', () => {
      let plain: Gateway;
      before(async () => {
        plain = await start([...apimManifests(false), ...routing(fleet.urls, stub.url)]);
      });
      after(() => plain?.close());

      test('no key is needed, and no quota applies', async () => {
        for (let i = 0; i < QUOTA + 2; i++) {
          const r = await chat(plain, { model: i % 2 ? 'echo' : 'other' });
          assert.equal(r.status, 200, JSON.stringify(r.body));
          assert.equal(r.headers['x-ratelimit-limit-requests'], undefined);
        }
        const streamed = await new OpenAI({ baseURL: `${plain.url}/v1`, apiKey: 'anything', maxRetries: 0 }).chat.completions.create({
          model: 'chat',
          messages: [{ role: 'user', content: 'hi' }],
          max_tokens: 3,
        });
        assert.equal(streamed.usage!.completion_tokens, 3);
      });

      test('an unknown model is 404 model_not_found, and there is no quota report', async () => {
        assertFault(await chat(plain, { model: 'nope' }), 404, 'model_not_found');
        assertFault(await call(plain.url, 'GET', '/v1/tollgate/quota'), 404, 'route_not_found');
      });
    });

    describe('faults outside the request policies, with a good key', () => {
      test('bad JSON, an unknown model, a token reservation over the limit, a model server that fails', async () => {
        const app = await freshApp(['gold'], 'faults');
        const bad = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...withKey(app.key) }, body: '{"model": "echo", "messages": [' });
        assert.equal(bad.statusCode, 400);
        assert.equal(((await bad.body.json()) as { error: { code: string } }).error.code, 'invalid_json');
        const unknown = await chat(gw, { model: 'nope' }, withKey(app.key));
        assert.ok([401, 404].includes(unknown.status), `unknown model: ${unknown.status}`);
        const greedy = await chat(gw, { max_tokens: TOKENS + 1 }, withKey(app.key));
        assert.equal(greedy.status, 429, JSON.stringify(greedy.body));
        assert.match(String(codeOf(greedy)), /^policies\.llmtokenquota\./);
        const handler = stub.handler;
        // The connection drops before an answer: as unreachable as a refused connect, so 503 (DESIGN.md).
        stub.handler = (r) => void r.res.destroy();
        try {
          assertFault(await chat(gw, {}, withKey(app.key)), 503, 'upstream_unavailable');
        } finally {
          stub.handler = handler;
        }
      });
    });

    test('no key, secret or prompt text appears in any log line', () => {
      const prompt = String(MESSAGES[0].content);
      assert.equal(logLines.find((l) => l.includes(prompt)), undefined, 'prompt text is logged only with logging.logPrompts');
      for (const status of [400, 503]) assert.ok(logLines.some((l) => l.includes('"msg":"request"') && l.includes(`"status":${status}`)), `an access-log line with status ${status}`);
      assert.ok(secrets.length >= 10, `${secrets.length} secrets collected`);
      const access = logLines.filter((l) => l.includes('"msg":"request"'));
      assert.ok(access.length > 30, `${access.length} access-log lines captured`);
      assert.ok(access.some((l) => l.includes('"status":401')) && access.some((l) => l.includes('"status":429')));
      for (const secret of new Set(secrets.filter(Boolean))) {
        const leak = logLines.find((l) => l.includes(secret));
        assert.equal(leak, undefined, `a secret (${secret.slice(0, 6)}…) is in a log line`);
      }
    });

    // Registered last, so it runs after the hooks that close the gateways.
    after(async () => {
      for (const db of made.databases) await db.dispose();
      for (const prefix of made.redisPrefixes) await deleteKeysAt(REDIS_URL!, prefix);
      for (const dir of made.dirs) rmSync(dir, { recursive: true, force: true });
    });
  });
}
