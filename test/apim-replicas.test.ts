// Three gateway processes sharing PostgreSQL and Redis: one request quota and one token quota across replicas, and a key revoked on one replica refused by all within 1 s.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { countChatTokens } from '../src/lib/tokenizer.js';
import { randomBase62 } from '../src/store/keys.js';
import { openDatabase } from '../src/store/open-database.js';
import { appPath, awayFromWindowEdge, call, codeOf, createApp, quotaReport, until, untilKeyKnown, type Answer, type IssuedApp } from './helpers/apim-admin.js';
import { startGatewayChild, stopGatewayChild, type GatewayChild } from './helpers/gateway-child.js';
import type { GatewayProcessArgs } from './helpers/gateway-process.js';
import { json, startStub, type Stub, type StubRequest } from './helpers/stub-upstream.js';
import { deleteKeysAt } from '../src/store/caches/redis.js';

const DATABASE_URL = process.env.DATABASE_URL;
const REDIS_URL = process.env.REDIS_URL;

const MINUTE = 60_000;
const HOUR = 3_600_000;

/** (a) Requests per minute on the `requests` product, and how many are fired at once over the three replicas. */
const N = 50;
const M = 150;

/** (b) Token quota: each request asks for MAX_TOKENS, the stub reports COMPLETION; exactly ADMITTED fit the limit. */
const MESSAGES = [{ role: 'user', content: 'Count the tokens of this prompt, please.' }];
const PROMPT = countChatTokens(MESSAGES);
const MAX_TOKENS = 40;
const COMPLETION = 25;
const RESERVED = PROMPT + MAX_TOKENS;
const ADMITTED = 12;
const TOKEN_LIMIT = ADMITTED * RESERVED + RESERVED - 1;
const TOKEN_REQUESTS = 40;

const MANIFESTS: GatewayProcessArgs['manifests'] = [
  // The stub model server runs in this test process, which the bursts below keep busy, on a CI machine shared with
  // other test files: scrapes that stall a second there must not take the only endpoint out (503 no_healthy_endpoints).
  // What is tested here is the quotas; endpoint health has its own tests (scraper, picker-e2e).
  ['GatewaySettings', 'lenient-scrapes', { scheduler: { scrapeInterval: '200ms', staleAfter: '10s' } }],
  ['APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate', kind: 'Gateway' } }],
  ['APIProduct', 'requests', { displayName: 'Requests', enforcementRefs: [{ name: 'ext' }] }],
  [
    'APIOperationSet',
    'requests-ops',
    {
      apiProductRefs: [{ name: 'requests' }],
      quota: { limit: N, interval: 1, timeUnit: 'minute' },
      llmOperations: { models: ['m'], llmTokenQuota: { limit: 10_000_000, interval: 1, timeUnit: 'hour' } },
    },
  ],
  ['APIProduct', 'tokens', { displayName: 'Tokens', enforcementRefs: [{ name: 'ext' }] }],
  [
    'APIOperationSet',
    'tokens-ops',
    { apiProductRefs: [{ name: 'tokens' }], llmOperations: { models: ['m'], llmTokenQuota: { limit: TOKEN_LIMIT, interval: 1, timeUnit: 'hour', countOn: 'total' } } },
  ],
];

const skip = DATABASE_URL && REDIS_URL ? false : 'DATABASE_URL and REDIS_URL are required';

describe('three replicas sharing PostgreSQL and Redis', { skip }, () => {
  const schema = `test_replicas_${randomBase62(12).toLowerCase()}`;
  const keyPrefix = `tollgate:test:${randomBase62(12)}:`;
  let stub: Stub;
  let replicas: GatewayChild[] = [];
  let requestsApp: IssuedApp;
  let tokensApp: IssuedApp;
  /** While set, the stub holds its answers here instead of sending them. */
  let held: (() => void)[] | null = null;

  function answer(r: StubRequest): void {
    const prompt = Array.isArray(r.body?.messages) ? countChatTokens(r.body.messages) : 0;
    const completion = Math.min(COMPLETION, r.body?.max_tokens ?? COMPLETION);
    json(r.res, 200, {
      id: 'chatcmpl-stub',
      object: 'chat.completion',
      model: r.body?.model,
      choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'length' }],
      usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
    });
  }

  function chat(replica: GatewayChild, key: string, body: Record<string, unknown> = {}): Promise<Answer> {
    return call(replica.url, 'POST', '/v1/chat/completions', { model: 'm', messages: MESSAGES, max_tokens: MAX_TOKENS, ...body }, { 'x-api-key': key });
  }

  const tally = (answers: Answer[]) => {
    const out: Record<string, number> = {};
    for (const a of answers) {
      const k = a.status === 200 ? '200' : a.status >= 500 ? `${a.status} ${codeOf(a)}: ${a.body?.error?.message}` : `${a.status} ${codeOf(a)}`;
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  };

  before(async () => {
    stub = await startStub((r) => (held ? void held.push(() => answer(r)) : answer(r)));
    const args: GatewayProcessArgs = { manifests: [...MANIFESTS, ['InferencePool', 'pool', { endpoints: [stub.url] }], ['InferenceModel', 'm', { modelName: 'm', poolRef: { name: 'pool' } }]], db: DATABASE_URL, dbSchema: schema, redis: REDIS_URL, redisKeyPrefix: keyPrefix };
    // Started together, as a deployment would: they migrate and sync the products concurrently.
    const started = await Promise.allSettled(['r1', 'r2', 'r3'].map((name) => startGatewayChild(name, args)));
    replicas = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;

    requestsApp = await createApp(replicas[0].adminUrl, ['requests'], 'requests');
    tokensApp = await createApp(replicas[0].adminUrl, ['tokens'], 'tokens');
    // Created on replica 1; the others learn of the keys through PostgreSQL NOTIFY.
    for (const r of replicas) for (const a of [requestsApp, tokensApp]) await untilKeyKnown(r.url, a.key, 5000);
  });

  after(async () => {
    held?.splice(0).forEach((send) => send());
    held = null;
    await Promise.all(replicas.map((r) => stopGatewayChild(r.child)));
    // Each clean-up step runs even when another fails.
    const cleaned = await Promise.allSettled([
      stub?.close(),
      (async () => {
        const db = await openDatabase(DATABASE_URL!, { schema, listen: false });
        await db.dropSchema();
        await db.close();
      })(),
      deleteKeysAt(REDIS_URL!, keyPrefix),
    ]);
    for (const c of cleaned) if (c.status === 'rejected') throw c.reason;
  });

  test(`(a) ${M} concurrent requests over three replicas at a quota of ${N}: exactly ${N} succeed`, async (t) => {
    await awayFromWindowEdge(MINUTE, 10_000);
    const answers = await Promise.all(Array.from({ length: M }, (_, i) => chat(replicas[i % 3], requestsApp.key)));
    const ok = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status === 429 && codeOf(a) === 'policies.ratelimit.QuotaViolation');
    t.diagnostic(`answers: ${JSON.stringify(tally(answers))}`);
    assert.equal(ok.length, N, JSON.stringify(tally(answers)));
    assert.equal(refused.length, M - N, JSON.stringify(tally(answers)));
    for (const a of refused) assert.ok(Number(a.headers['retry-after']) >= 1);
    for (const a of ok) assert.equal(a.headers['x-ratelimit-limit-requests'], String(N));
    const remaining = ok.map((a) => Number(a.headers['x-ratelimit-remaining-requests'])).sort((x, y) => x - y);
    assert.deepEqual(remaining, Array.from({ length: N }, (_, i) => i), 'each success saw its own place in the one shared counter');
    // Every replica reports the same shared counter.
    for (const r of replicas) {
      const q = (await quotaReport(r.url, requestsApp.key)).body.products[0].operationSets[0].quota;
      assert.deepEqual({ used: q.used, remaining: q.remaining }, { used: N, remaining: 0 }, r.name);
    }
  });

  test(`(b) token quota of ${TOKEN_LIMIT}: ${TOKEN_REQUESTS} concurrent requests reserving ${RESERVED} each, exactly ${ADMITTED} admitted, reconciled within the limit`, async (t) => {
    await awayFromWindowEdge(HOUR, 30_000);
    // The stub holds every admitted request until all have been admitted or refused, so no reconciliation frees
    // tokens mid-burst and exactly floor(limit / reservation) fit.
    held = [];
    let refused = 0;
    const pending = Array.from({ length: TOKEN_REQUESTS }, (_, i) =>
      chat(replicas[i % 3], tokensApp.key).then((a) => {
        if (a.status !== 200) refused++;
        return a;
      }),
    );
    await until(async () => held!.length + refused, (n) => n >= TOKEN_REQUESTS, 30_000, 'every request admitted or refused', 20);
    const admitted = held.length;
    const reservedInRedis = await tokenCounters();
    held.splice(0).forEach((send) => send());
    held = null;
    const answers = await Promise.all(pending);
    t.diagnostic(`answers: ${JSON.stringify(tally(answers))}; reserved in Redis while held: ${reservedInRedis}`);

    assert.equal(admitted, ADMITTED, JSON.stringify(tally(answers)));
    assert.equal(answers.filter((a) => a.status === 200).length, ADMITTED);
    const refusals = answers.filter((a) => a.status !== 200);
    assert.equal(refusals.length, TOKEN_REQUESTS - ADMITTED);
    for (const a of refusals) {
      assert.equal(a.status, 429);
      assert.equal(codeOf(a), 'policies.llmtokenquota.LLMTokenQuotaViolation');
      assert.ok(Number(a.headers['retry-after']) >= 1);
    }
    assert.equal(reservedInRedis, ADMITTED * RESERVED, 'reservations in Redis while the requests ran');
    assert.ok(reservedInRedis <= TOKEN_LIMIT);

    // Reconciled to what the stub reported, on whichever replica served each request.
    const actual = ADMITTED * (PROMPT + COMPLETION);
    for (const r of replicas) {
      const report = await until(
        () => quotaReport(r.url, tokensApp.key),
        (a) => a.body?.products?.[0]?.operationSets?.[0]?.llmTokenQuota?.used === actual,
        3000,
        `${r.name}: tokens reconciled to ${actual}`,
      );
      const q = report.body.products[0].operationSets[0].llmTokenQuota;
      assert.equal(q.remaining, TOKEN_LIMIT - actual);
    }
    assert.equal(await tokenCounters(), actual, 'the Redis counter holds the real usage');
    assert.ok(actual <= TOKEN_LIMIT);
  });

  test('(c) a key revoked on replica 1 is refused by every replica within 1 s', async (t) => {
    for (const r of replicas) assert.equal((await quotaReport(r.url, requestsApp.key)).status, 200, `${r.name} accepts the key before`);
    const sent = performance.now();
    const revoked = await call(replicas[0].adminUrl, 'POST', appPath(requestsApp, `/keys/${requestsApp.keyId}?action=revoke`));
    const committed = performance.now();
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.equal(revoked.body.status, 'revoked');
    const refusedAt = await Promise.all(
      replicas.map(async (r) => {
        await until(() => quotaReport(r.url, requestsApp.key), (a) => codeOf(a) === 'oauth.v2.ApiKeyNotApproved', 5000, `${r.name} refuses the revoked key`);
        return performance.now();
      }),
    );
    const ms = refusedAt.map((at) => Math.round(at - committed));
    t.diagnostic(`admin answer after ${Math.round(committed - sent)} ms; refused by r1, r2, r3 after ${ms.join(', ')} ms`);
    for (const [i, m] of ms.entries()) assert.ok(m <= 1000, `${replicas[i].name} refused the key ${m} ms after the revocation was committed`);
    for (const r of replicas) {
      const a = await chat(r, requestsApp.key);
      assert.equal(a.status, 401, r.name);
      assert.equal(codeOf(a), 'oauth.v2.ApiKeyNotApproved', r.name);
    }
  });

  /** The sum of the token-quota counters of the tokens app, read from Redis itself. */
  async function tokenCounters(): Promise<number> {
    const redis = new Redis(REDIS_URL!);
    try {
      let sum = 0;
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${keyPrefix}counters:fw:apim:pt:tokens-ops:developer.app.id:${tokensApp.appId}:*`, 'COUNT', 1000);
        for (const key of keys) sum += Number((await redis.hget(key, 'c')) ?? 0);
        cursor = next;
      } while (cursor !== '0');
      return sum;
    } finally {
      redis.disconnect();
    }
  }
});
