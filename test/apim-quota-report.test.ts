// GET /v1/tollgate/quota end to end on one gateway (SQLite in memory, memory counters, keys from the admin API): after N
// requests, the report shows N used under a rolling-window product quota, a template Quota and a template LLMTokenQuota.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { awayFromWindowEdge, call, createApp, quotaReport, until, untilKeyKnown, type Answer } from './helpers/apim-admin.js';
import { manifest } from './helpers/manifests.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const N = 4;
/** Tokens the stub reports per request (its default usage). */
const TOKENS_PER_REQUEST = 12;
const DAY = 86_400_000;

let stub: Stub;
let gw: Gateway;

before(async () => {
  stub = await startStub();
  const ext = [{ name: 'ext', kind: 'APIMExtensionPolicy', group: 'apim.googleapis.com' }];
  gw = await startGateway({
    configPaths: [],
    manifests: [
      manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate', kind: 'Gateway' } }),
      manifest('APIProduct', 'rolling', { displayName: 'Rolling', approvalType: 'auto', enforcementRefs: ext }),
      manifest('APIOperationSet', 'rolling-ops', { apiProductRefs: [{ name: 'rolling' }], quota: { limit: 100, interval: 1, timeUnit: 'minute' } }),
      // The product's quota counted in a rolling window: a counter the calendar-window report never read.
      manifest('APIProduct', 'tight', { displayName: 'Tight', approvalType: 'auto', enforcementRefs: ext }),
      manifest('APIOperationSet', 'tight-ops', { apiProductRefs: [{ name: 'tight' }], quota: { limit: 1, interval: 1, timeUnit: 'minute' } }),
      manifest('Quota', 'product-rolling', { useQuotaConfigInAPIProduct: true, type: 'rollingwindow' }),
      manifest('Quota', 'daily-requests', { allow: 1000, timeUnit: 'day' }),
      manifest('LLMTokenQuota', 'daily-tokens', { limit: 100_000, timeUnit: 'day', countOn: 'total' }),
      manifest('ApimTemplate', 'limits', {
        templates: [
          {
            policies: [
              { kind: 'Quota', name: 'daily-requests' },
              { kind: 'LLMTokenQuota', name: 'daily-tokens' },
              { kind: 'Quota', name: 'product-rolling' },
            ],
          },
        ],
      }),
      manifest('InferencePool', 'stub', { endpoints: [stub.url] }),
      manifest('InferenceModel', 'echo', { modelName: 'echo', poolRef: { name: 'stub' } }),
    ],
    ...LOOPBACK,
  });
});

after(async () => {
  await gw?.close();
  await stub?.close();
});

const entry = (a: Answer, policy: string) => a.body?.quotas?.find((q: { policy: string }) => q.policy === policy);

test(`after ${N} requests the report shows ${N} used under the rolling product quota and the template quotas`, async () => {
  const app = await createApp(gw.adminUrl, ['rolling'], 'report');
  await untilKeyKnown(gw.url, app.key);
  await awayFromWindowEdge(DAY, 10_000);
  for (let i = 0; i < N; i++) {
    const r = await call(gw.url, 'POST', '/v1/chat/completions', { model: 'echo', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20 }, { 'x-api-key': app.key });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  // Token reservations are reconciled once each exchange is over, off the response path.
  const report = await until(
    () => quotaReport(gw.url, app.key),
    (a) => entry(a, 'daily-tokens')?.used === N * TOKENS_PER_REQUEST,
    2000,
    `token usage reconciled to ${N * TOKENS_PER_REQUEST}`,
  );
  assert.equal(report.status, 200);

  const set = report.body.products[0].operationSets[0];
  assert.equal(set.name, 'rolling-ops');
  assert.deepEqual(
    { used: set.quota.used, remaining: set.quota.remaining, policy: set.quota.policy, window: set.quota.window },
    { used: N, remaining: 100 - N, policy: 'product-rolling', window: 'rollingwindow' },
  );
  const product = entry(report, 'product-rolling');
  assert.deepEqual({ kind: product.kind, product: product.product, operationSet: product.operationSet, used: product.used }, { kind: 'Quota', product: 'rolling', operationSet: 'rolling-ops', used: N });

  const requests = entry(report, 'daily-requests');
  assert.deepEqual({ kind: requests.kind, limit: requests.limit, used: requests.used, remaining: requests.remaining }, { kind: 'Quota', limit: 1000, used: N, remaining: 1000 - N });
  assert.equal(requests.product, undefined, 'a gateway-level template quota belongs to no product');
  const tokens = entry(report, 'daily-tokens');
  assert.deepEqual({ kind: tokens.kind, countOn: tokens.countOn, remaining: tokens.remaining }, { kind: 'LLMTokenQuota', countOn: 'total', remaining: 100_000 - N * TOKENS_PER_REQUEST });

  assert.deepEqual(
    report.body.quotas.map((q: { policy: string }) => q.policy),
    ['daily-requests', 'daily-tokens', 'product-rolling'],
    'the listed product quota replaces the default one; the product has no token quota',
  );
  const again = await quotaReport(gw.url, app.key);
  assert.equal(entry(again, 'daily-requests').used, N, 'the report itself counts nothing');
});

test('refused by a quota after the token quota reserved: x-ratelimit-remaining-tokens shows the reservation given back', async () => {
  const app = await createApp(gw.adminUrl, ['tight'], 'refused');
  await untilKeyKnown(gw.url, app.key);
  await awayFromWindowEdge(60_000, 10_000);
  const chat = () => call(gw.url, 'POST', '/v1/chat/completions', { model: 'echo', messages: [{ role: 'user', content: 'hi' }], max_tokens: 300 }, { 'x-api-key': app.key });
  assert.equal((await chat()).status, 200);
  await until(() => quotaReport(gw.url, app.key), (a) => entry(a, 'daily-tokens')?.used === TOKENS_PER_REQUEST, 2000, 'the first request reconciled');
  // The product quota (1 a minute) runs after daily-tokens, which reserved the prompt and 300 more for this request.
  const refused = await chat();
  assert.equal(refused.status, 429);
  assert.equal(refused.body.error.code, 'policies.ratelimit.QuotaViolation');
  // Before: 100,000 − 12 − the reservation, which the refusal gives back.
  assert.equal(refused.headers['x-ratelimit-remaining-tokens'], String(100_000 - TOKENS_PER_REQUEST));
  const after = await until(() => quotaReport(gw.url, app.key), (a) => entry(a, 'daily-tokens')?.used === TOKENS_PER_REQUEST, 2000, 'the refund');
  assert.equal(entry(after, 'daily-tokens').remaining, 100_000 - TOKENS_PER_REQUEST);
});
