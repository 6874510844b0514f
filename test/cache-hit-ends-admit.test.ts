// A cache hit ends the admit phase, as a ResponseCache hit skips the rest of Apigee's request flow: a token quota listed
// after the cache neither reserves for a hit nor refuses it, and every hit counted is an answer served. The product
// quota, which defaultSecurityEnabled runs before the first cache, still counts hits.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { silentLogger } from '../src/lib/logger.js';
import { awayFromWindowEdge, call, createApp, quotaReport, until, untilKeyKnown, type Answer } from './helpers/apim-admin.js';
import { manifest } from './helpers/manifests.js';
import { json, startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const HOUR = 3_600_000;

let stub: Stub;
let gw: Gateway;
let key: string;

before(async () => {
  stub = await startStub((r) =>
    json(r.res, 200, {
      id: 'c1',
      object: 'chat.completion',
      created: 1,
      model: 'm',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Paris.' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 40, completion_tokens: 40, total_tokens: 80 },
    }),
  );
  gw = await startGateway({
    configPaths: [],
    manifests: [
      manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate' } }),
      manifest('InferencePool', 'stub', { endpoints: [stub.url] }),
      manifest('InferenceModel', 'm', { modelName: 'm', poolRef: { name: 'stub' } }),
      manifest('APIProduct', 'p', { displayName: 'p' }),
      manifest('APIOperationSet', 'p-ops', { apiProductRefs: [{ name: 'p' }], quota: { limit: 100, interval: 1, timeUnit: 'hour' } }),
      manifest('ResponseCache', 'answers', {}),
      // Room for one answer of 80 tokens: the next request's reservation would not fit.
      manifest('LLMTokenQuota', 'tokens', { limit: 150, interval: 1, timeUnit: 'hour', countOn: 'total' }),
      manifest('ApimTemplate', 't', { templates: [{ policies: [{ kind: 'ResponseCache', name: 'answers' }, { kind: 'LLMTokenQuota', name: 'tokens' }] }] }),
    ],
    ...LOOPBACK,
    logger: silentLogger,
  });
  key = (await createApp(gw.adminUrl, ['p'], 'a')).key;
  await untilKeyKnown(gw.url, key);
});

after(async () => {
  await gw?.close();
  await stub?.close();
});

const ask = (): Promise<Answer> =>
  call(gw.url, 'POST', '/v1/chat/completions', { model: 'm', temperature: 0, max_tokens: 40, messages: [{ role: 'user', content: 'What is the capital of France?' }] }, { 'x-api-key': key });

async function used(): Promise<Record<string, number>> {
  const report = await quotaReport(gw.url, key);
  return Object.fromEntries((report.body.quotas as { policy: string; used: number }[]).map((q) => [q.policy, q.used]));
}

async function hitsCounted(): Promise<number> {
  const text = String((await call(gw.adminUrl, 'GET', '/metrics')).body);
  return Number(/^tollgate_cache_events_total\{policy="answers",event="hits"\} (\d+)$/m.exec(text)?.[1] ?? 0);
}

test('a token quota listed after the cache neither reserves for a hit nor refuses it; every hit counted is served', async () => {
  await awayFromWindowEdge(HOUR, 10_000);
  const miss = await ask();
  assert.equal(miss.status, 200);
  assert.equal(miss.headers['x-cache'], 'MISS');
  await until(used, (u) => u.tokens === 80, 3000, 'the answer settled in the token quota');

  for (let i = 0; i < 3; i++) {
    const hit = await ask();
    // Before: 429, "LLM token quota exceeded: 70 of 150 tokens left, this request needs up to 80", counted as a hit.
    assert.equal(hit.status, 200, JSON.stringify(hit.body));
    assert.equal(hit.headers['x-cache'], 'HIT');
    // Before (with room in the quota): the reservation made after the hit, shown as spent.
    assert.equal(hit.headers['x-ratelimit-remaining-tokens'], undefined);
    assert.equal(hit.headers['x-ratelimit-remaining-requests'], String(100 - 2 - i), 'the product quota before the cache counts it');
  }
  assert.equal(stub.requests.length, 1);
  assert.equal(await hitsCounted(), 3);
  assert.deepEqual(await used(), { 'default-product-quota': 4, tokens: 80 });
});
