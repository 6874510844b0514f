// The default product quotas, decided per chain: a product's own template, or a template entry under a condition,
// holding a Quota or LLMTokenQuota on the product's limits replaces the default only for the requests it counts, so
// every request is counted once on its operation set's limits.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifests } from '../config/manifest.js';
import { GatewayError } from '../gateway/errors.js';
import { MemoryCounterStore } from '../store/counters/memory.js';
import { createPolicyEngine, type PolicyEngine } from './engine.js';
import { MemoryIdentitySource } from './memory-identity.js';
import { PolicyRegistry, registerBuiltins } from './registry.js';
import { MONDAY, TestClock, fakeContext } from './testing.js';
import type { PolicyFactory } from './types.js';

const V = 'apiVersion: apim.googleapis.com/v1';
const doc = (kind: string, name: string, spec: string) => `${V}\nkind: ${kind}\nmetadata: {name: ${name}}\nspec: ${spec}\n`;
const ext = doc('APIMExtensionPolicy', 'ext', '{targetRef: {name: gw}, defaultSecurityEnabled: true}');
const goldWith = (template: string) => doc('APIProduct', 'gold', `{displayName: Gold, templateRefs: [{name: ${template}}]}`);

/** A stand-in for a JavaScript policy that sets a request header, which later conditions read. */
const setsCountedHeader: PolicyFactory = (name) => ({
  type: 'javascript',
  name,
  admit(ctx) {
    ctx.headers['x-counted'] = 'yes';
  },
});

function engineOf(limits: Record<string, unknown>, ...docs: string[]): PolicyEngine {
  const identity = new MemoryIdentitySource([
    { name: 'gold-ops', spec: { apiProductRefs: [{ name: 'gold' }], ...limits } },
    { name: 'basic-ops', spec: { apiProductRefs: [{ name: 'basic' }], ...limits } },
  ]);
  identity.add({ key: 'tg_gold', products: ['gold'] });
  identity.add({ key: 'tg_basic', products: ['basic'] });
  identity.add({ key: 'tg_both', products: ['basic', 'gold'] });
  const builtins = registerBuiltins();
  const registry = new PolicyRegistry();
  for (const kind of builtins.kinds()) registry.register(kind, kind === 'JavaScript' ? setsCountedHeader : builtins.get(kind)!);
  const manifests = parseManifests([ext, ...docs].join('---\n'), 'test.yaml');
  return createPolicyEngine({ manifests, counters: new MemoryCounterStore(), identity, registry, now: new TestClock(MONDAY + 1000).now });
}

/** What each of `n` requests with `key` for `model` ends with: 'ok' or the fault's code. */
async function outcomes(engine: PolicyEngine, key: string, n: number, model = 'small'): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const ctx = fakeContext({ model, headers: { 'x-api-key': key }, body: { max_tokens: 40 } });
    try {
      await engine.hooks.authenticate?.(ctx);
      await engine.hooks.admit?.(ctx);
      out.push('ok');
    } catch (err) {
      if (!(err instanceof GatewayError)) throw err;
      out.push(err.code);
    }
  }
  return out;
}

// Each operation set allows two requests: two admitted, the third refused. With no product quota all three pass; one
// counted twice leaves the second refused.
const kinds = [
  { kind: 'Quota', limits: { quota: { limit: 2, interval: 1, timeUnit: 'minute' } }, refused: 'policies.ratelimit.QuotaViolation' },
  // About 48 tokens a request (a short prompt and max_tokens 40) against 100.
  { kind: 'LLMTokenQuota', limits: { llmOperations: { llmTokenQuota: { limit: 100, interval: 1, timeUnit: 'hour' } } }, refused: 'policies.llmtokenquota.LLMTokenQuotaViolation' },
];

for (const { kind, limits, refused } of kinds) {
  describe(`a ${kind} on the product's limits`, () => {
    const twice = ['ok', 'ok', refused];
    const holder = doc(kind, 'product-limit', '{useQuotaConfigInAPIProduct: true}');

    test("in one product's template: other products keep the default, that product counts once", async () => {
      const engine = engineOf(limits, holder, doc('ApimTemplate', 'gold-extras', `{templates: [{policies: [{kind: ${kind}, name: product-limit}]}]}`), goldWith('gold-extras'));
      assert.deepEqual(await outcomes(engine, 'tg_basic', 3), twice, 'basic, without templates of its own');
      assert.deepEqual(await outcomes(engine, 'tg_gold', 3), twice, 'gold, by its own policy alone');
    });

    test('in a product template behind a gateway cache lookup (where the defaults run): counted once', async () => {
      const engine = engineOf(
        limits,
        holder,
        doc('ResponseCache', 'answers', '{expirySettings: {timeoutInSeconds: 60}}'),
        doc('ApimTemplate', 'caching', '{templates: [{policies: [{kind: ResponseCache, name: answers}]}]}'),
        doc('ApimTemplate', 'gold-extras', `{templates: [{policies: [{kind: ${kind}, name: product-limit}]}]}`),
        goldWith('gold-extras'),
      );
      assert.deepEqual(await outcomes(engine, 'tg_gold', 3), twice);
      assert.deepEqual(await outcomes(engine, 'tg_basic', 3), twice);
    });

    test('under a gateway condition: the default counts the requests it skips, and only those', async () => {
      const engine = engineOf(limits, holder, doc('ApimTemplate', 't', `{templates: [{condition: "model == 'big'", policies: [{kind: ${kind}, name: product-limit}]}]}`));
      assert.deepEqual(await outcomes(engine, 'tg_basic', 3, 'small'), twice);
      assert.deepEqual(await outcomes(engine, 'tg_gold', 3, 'big'), twice);
    });

    test("under a condition in a product's template: the default counts the requests it skips, and only those", async () => {
      const engine = engineOf(limits, holder, doc('ApimTemplate', 'gold-extras', `{templates: [{condition: "model == 'big'", policies: [{kind: ${kind}, name: product-limit}]}]}`), goldWith('gold-extras'));
      assert.deepEqual(await outcomes(engine, 'tg_gold', 3, 'small'), twice);
      const big = engineOf(limits, holder, doc('ApimTemplate', 'gold-extras', `{templates: [{condition: "model == 'big'", policies: [{kind: ${kind}, name: product-limit}]}]}`), goldWith('gold-extras'));
      assert.deepEqual(await outcomes(big, 'tg_gold', 3, 'big'), twice);
    });

    test('under a condition a later policy makes false: still counted once (the condition is answered once)', async () => {
      const engine = engineOf(
        limits,
        holder,
        doc('JavaScript', 'mark', "{source: \"request.headers['x-counted'] = 'yes';\"}"),
        doc('ApimTemplate', 't', `{templates: [{condition: "!('x-counted' in request.headers)", policies: [{kind: ${kind}, name: product-limit}]}, {policies: [{kind: JavaScript, name: mark}]}]}`),
      );
      assert.deepEqual(await outcomes(engine, 'tg_gold', 3), twice);
    });
  });
}

test("the quota report lists a default product quota only for the products it counts for", async () => {
  const engine = engineOf(
    kinds[0].limits,
    doc('Quota', 'product-limit', '{useQuotaConfigInAPIProduct: true}'),
    doc('ApimTemplate', 'gold-extras', '{templates: [{policies: [{kind: Quota, name: product-limit}]}]}'),
    goldWith('gold-extras'),
  );
  const report = await engine.quotaReport(fakeContext({ method: 'GET', url: '/v1/tollgate/quota', headers: { 'x-api-key': 'tg_both' } }));
  assert.deepEqual(
    report.quotas.map((q) => [q.policy, q.product]),
    [
      ['product-limit', 'gold'],
      ['default-product-quota', 'basic'],
    ],
  );
});
