// The self-service quota report reads every quota where its policy counts: product quotas of every window type and
// identifier, template Quota and LLMTokenQuota policies, product-owned and conditional ones — on every counter backend.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifests } from '../config/manifest.js';
import type { RequestContext } from '../gateway/context.js';
import { describeOnCounterBackends } from '../store/counters/test-counter-stores.js';
import type { CounterStore } from '../store/counters/counter-store.js';
import { createPolicyEngine, type PolicyEngine } from './engine.js';
import { MemoryIdentitySource } from './memory-identity.js';
import type { QuotaEntry } from './quota-report.js';
import { MONDAY, TestClock, fakeContext, unique, type FakeRequest } from './testing.js';

const V = 'apiVersion: apim.googleapis.com/v1';
const doc = (kind: string, name: string, spec: string) => `${V}\nkind: ${kind}\nmetadata: {name: ${name}}\nspec: ${spec}\n`;
const ext = (secure = true) => doc('APIMExtensionPolicy', 'ext', `{targetRef: {name: gw}, defaultSecurityEnabled: ${secure}}`);
const template = (name: string, kind: string, policy: string, condition?: string) =>
  doc('ApimTemplate', name, `{templates: [{${condition ? `condition: "${condition}", ` : ''}policies: [{kind: ${kind}, name: ${policy}}]}]}`);
const MINUTE = 60_000;
const HOUR = 3_600_000;

/** Gold: 100 requests a minute and 10 000 tokens an hour per app; basic: no limits. Fresh names per call. */
function catalog() {
  const goldSet = unique('gold-set');
  const identity = new MemoryIdentitySource([
    {
      name: goldSet,
      spec: { apiProductRefs: [{ name: 'gold' }], quota: { limit: 100, interval: 1, timeUnit: 'minute' }, llmOperations: { llmTokenQuota: { limit: 10_000, interval: 1, timeUnit: 'hour' } } },
    },
    { name: unique('basic-set'), spec: { apiProductRefs: [{ name: 'basic' }] } },
  ]);
  identity.add({ key: 'tg_gold', keyId: unique('key'), appId: unique('app'), products: ['gold'] });
  identity.add({ key: 'tg_basic', keyId: unique('key'), appId: unique('app'), products: ['basic'] });
  return { identity, goldSet };
}

const req = (key: string, r: FakeRequest = {}): RequestContext => fakeContext({ ...r, headers: { 'x-api-key': key, ...r.headers } });
const reportRequest = (key: string, headers: Record<string, string> = {}) => fakeContext({ method: 'GET', url: '/v1/tollgate/quota', headers: { 'x-api-key': key, ...headers } });

describeOnCounterBackends((counters) => {

  function setup(docs: string[], clock = new TestClock(MONDAY + 10_000), store: CounterStore = counters()) {
    const { identity, goldSet } = catalog();
    const engine = createPolicyEngine({ manifests: parseManifests(docs.join('---\n'), 'test.yaml'), counters: store, identity, now: clock.now });
    return { engine, goldSet, clock };
  }

  async function send(engine: PolicyEngine, n: number, key = 'tg_gold', r: FakeRequest = {}): Promise<void> {
    for (let i = 0; i < n; i++) {
      const ctx = req(key, r);
      await engine.hooks.authenticate?.(ctx);
      await engine.hooks.admit?.(ctx);
    }
  }

  const entry = (quotas: QuotaEntry[], policy: string) => {
    const found = quotas.filter((q) => q.policy === policy);
    assert.equal(found.length, 1, `one entry of ${policy} in ${JSON.stringify(quotas)}`);
    return found[0];
  };

  describe('product quotas, read where the enforcing Quota counts', () => {
    const windows: { name: string; spec: string; resetAt: (first: number) => number }[] = [
      { name: 'calendar windows (the default chain)', spec: '', resetAt: () => MONDAY + MINUTE },
      // Rolling: when the oldest counted slot (60 ms wide for a minute) leaves the window.
      { name: 'a rolling window', spec: 'type: rollingwindow', resetAt: (first) => first + 60 + MINUTE - 1 },
      { name: 'flexi, from the first request', spec: 'type: flexi', resetAt: (first) => first + MINUTE },
      { name: 'a custom identifier (the key, not the app)', spec: 'identifier: {ref: client_id}', resetAt: () => MONDAY + MINUTE },
    ];
    for (const w of windows) {
      test(w.name, async () => {
        const name = unique('pq');
        const docs = w.spec === '' ? [ext()] : [ext(), doc('Quota', name, `{useQuotaConfigInAPIProduct: true, ${w.spec}}`), template('t', 'Quota', name)];
        const { engine, goldSet, clock } = setup(docs);
        // A report before any request starts no flexi window.
        await engine.quotaReport(reportRequest('tg_gold'));
        clock.advance(5_000);
        const first = clock.t;
        await send(engine, 3);
        clock.advance(1_000);
        const report = await engine.quotaReport(reportRequest('tg_gold'));
        const policy = w.spec === '' ? 'default-product-quota' : name;
        const set = report.products[0].operationSets[0];
        assert.equal(set.name, goldSet);
        assert.deepEqual({ used: set.quota!.used, remaining: set.quota!.remaining, policy: set.quota!.policy }, { used: 3, remaining: 97, policy });
        assert.equal(set.quota!.resetAt, new Date(w.resetAt(first)).toISOString());
        const e = entry(report.quotas, policy);
        assert.deepEqual({ kind: e.kind, product: e.product, operationSet: e.operationSet, used: e.used, limit: e.limit }, { kind: 'Quota', product: 'gold', operationSet: goldSet, used: 3, limit: 100 });
        assert.equal(e.window, w.spec.startsWith('type: ') ? w.spec.slice(6) : 'fixed');
        assert.equal(e.note, undefined);
        const again = await engine.quotaReport(reportRequest('tg_gold'));
        assert.equal(again.products[0].operationSets[0].quota!.used, 3, 'reading counts nothing');
      });
    }
  });

  test('template Quota and LLMTokenQuota policies with their own limits', async () => {
    const q = unique('hourly');
    const tq = unique('tokens');
    const { engine } = setup([
      ext(),
      doc('Quota', q, '{allow: 50, timeUnit: hour}'),
      doc('LLMTokenQuota', tq, '{limit: 5000, timeUnit: day, countOn: output}'),
      doc('ApimTemplate', 't', `{templates: [{policies: [{kind: Quota, name: ${q}}, {kind: LLMTokenQuota, name: ${tq}}]}]}`),
    ]);
    await send(engine, 4, 'tg_gold', { body: { max_tokens: 7 } });
    const report = await engine.quotaReport(reportRequest('tg_gold'));
    assert.deepEqual(entry(report.quotas, q), {
      policy: q,
      kind: 'Quota',
      limit: 50,
      interval: 1,
      timeUnit: 'hour',
      window: 'fixed',
      identifier: 'developer.app.id',
      used: 4,
      remaining: 46,
      resetAt: new Date(MONDAY + HOUR).toISOString(),
    });
    const tokens = entry(report.quotas, tq);
    assert.deepEqual({ used: tokens.used, remaining: tokens.remaining, countOn: tokens.countOn, product: tokens.product }, { used: 28, remaining: 5000 - 28, countOn: 'output', product: undefined });
    assert.equal(report.products[0].operationSets[0].quota!.used, 4, 'the product quota counted too');
    assert.deepEqual(
      report.quotas.map((e) => e.policy),
      [q, tq, 'default-product-quota', 'default-product-token-quota'],
    );
  });

  test('a header identifier is read from the report request, with a note; a model identifier is unknown', async () => {
    const byTenant = unique('tenant');
    const byModel = unique('model');
    const { engine } = setup([
      ext(),
      doc('Quota', byTenant, '{allow: 10, timeUnit: hour, type: rollingwindow, identifier: {ref: request.header.x-tenant}}'),
      doc('Quota', byModel, '{allow: 10, timeUnit: hour, identifier: {ref: model}}'),
      doc('ApimTemplate', 't', `{templates: [{policies: [{kind: Quota, name: ${byTenant}}, {kind: Quota, name: ${byModel}}]}]}`),
    ]);
    const tenant = unique('acme');
    await send(engine, 2, 'tg_gold', { headers: { 'x-tenant': tenant } });
    await send(engine, 1, 'tg_gold', { headers: { 'x-tenant': 'other' } });
    const withHeader = entry((await engine.quotaReport(reportRequest('tg_gold', { 'x-tenant': tenant }))).quotas, byTenant);
    assert.equal(withHeader.used, 2);
    assert.match(withHeader.note!, /request\.header\.x-tenant: read for the value this report request carries/);
    const model = entry((await engine.quotaReport(reportRequest('tg_gold'))).quotas, byModel);
    assert.deepEqual({ used: model.used, remaining: model.remaining, resetAt: model.resetAt }, { used: null, remaining: null, resetAt: new Date(MONDAY + HOUR).toISOString() });
    assert.match(model.note!, /counted per model, which only the request itself tells/);
  });

  test('a product template\'s quota is listed for that product\'s keys only, with its condition', async () => {
    const q = unique('gold-only');
    const { engine } = setup([
      ext(),
      doc('Quota', q, '{allow: 5, timeUnit: minute, identifier: {ref: apiproduct.name}}'),
      template('gold-t', 'Quota', q, "request.method == 'POST'"),
      doc('APIProduct', 'gold', '{displayName: Gold, templateRefs: [{name: gold-t}]}'),
    ]);
    await send(engine, 2);
    const gold = entry((await engine.quotaReport(reportRequest('tg_gold'))).quotas, q);
    assert.deepEqual({ product: gold.product, condition: gold.condition, used: gold.used }, { product: 'gold', condition: "request.method == 'POST'", used: 2 });
    assert.deepEqual((await engine.quotaReport(reportRequest('tg_basic'))).quotas, [], 'basic has no limits and no gold template');
  });

  test('a product limit no policy enforces says so instead of reporting an unused counter', async () => {
    const { engine } = setup([ext(false), doc('VerifyAPIKey', 'k', '{}'), template('t', 'VerifyAPIKey', 'k')]);
    await send(engine, 2);
    const report = await engine.quotaReport(reportRequest('tg_gold'));
    const set = report.products[0].operationSets[0];
    assert.deepEqual(set.quota, { limit: 100, interval: 1, timeUnit: 'minute', used: null, remaining: null, resetAt: new Date(MONDAY + MINUTE).toISOString(), note: 'no policy on this gateway enforces this limit' });
    assert.equal(set.llmTokenQuota!.policy, undefined);
    assert.deepEqual(report.quotas, []);
  });
});
