// The engine end to end over manifests: plain gateway, default chain, order of checks, templates, first product
// decides, fault format, failOpen, config errors, reload, the response flow and the self-service report.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseManifests } from '../config/manifest.js';
import type { RequestContext } from '../gateway/context.js';
import { GatewayError } from '../gateway/errors.js';
import { MemoryCounterStore } from '../store/counters/memory.js';
import { describeOnCounterBackends } from '../store/counters/test-counter-stores.js';
import type { CounterStore } from '../store/counters/counter-store.js';
import type { CounterErrorOutcome } from './counter-guard.js';
import { createPolicyEngine, type PolicyEngine } from './engine.js';
import { MemoryIdentitySource } from './memory-identity.js';
import { HangingCounterStore, MONDAY, TestClock, UnavailableCounterStore, fakeContext, unique, type FakeRequest } from './testing.js';

const V = 'apiVersion: apim.googleapis.com/v1';

function extension(spec = 'defaultSecurityEnabled: true'): string {
  return `${V}\nkind: APIMExtensionPolicy\nmetadata: {name: gateway-ext}\nspec:\n  targetRef: {name: tollgate}\n  ${spec.replace(/\n/g, '\n  ')}\n`;
}

/** Operation sets named uniquely per call, so tests sharing a counter store never share a product counter. */
function catalog() {
  const basic = unique('basic-chat');
  const gold = unique('gold-all');
  const sets = [
    { name: basic, spec: { apiProductRefs: [{ name: 'basic' }], quota: { limit: 1, interval: 1, timeUnit: 'minute' }, restOperations: [{ name: 'chat', path: '/v1/chat/completions', methods: ['POST'] }], llmOperations: { models: ['small'] } } },
    { name: gold, spec: { apiProductRefs: [{ name: 'gold' }], quota: { limit: 5, interval: 1, timeUnit: 'minute' }, llmOperations: { llmTokenQuota: { limit: 1000, interval: 1, timeUnit: 'hour' } } } },
  ];
  const identity = new MemoryIdentitySource(sets);
  identity.add({ key: 'tg_basic', keyId: 'key_basic', appId: unique('app'), products: ['basic'] });
  identity.add({ key: 'tg_both', keyId: 'key_both', appId: unique('app'), appName: 'both-app', developerEmail: 'ada@example.com', products: ['basic', 'gold'] });
  identity.add({ key: 'tg_gold', appId: unique('app'), products: ['gold'] });
  return { identity, basic, gold };
}

function engineOf(yaml: string, counters: CounterStore = new MemoryCounterStore(), clock = new TestClock(MONDAY), identity = catalog().identity, onCounterError?: (outcome: CounterErrorOutcome) => void): PolicyEngine {
  return createPolicyEngine({ manifests: parseManifests(yaml, 'test.yaml'), counters, identity, now: clock.now, onCounterError });
}

const withKey = (key: string, req: FakeRequest = {}): RequestContext => fakeContext({ ...req, headers: { ...req.headers, 'x-api-key': key } });

/** authenticate → (the gateway's model lookup) → admit, as the data plane calls them. */
async function run(engine: PolicyEngine, ctx: RequestContext): Promise<void> {
  await engine.hooks.authenticate?.(ctx);
  await engine.hooks.admit?.(ctx);
}

/** The fault a call ends with ('ok' when none); a phase may throw synchronously, as the data plane's await allows. */
async function codeOf(call: () => unknown): Promise<string> {
  try {
    await call();
    return 'ok';
  } catch (err) {
    if (err instanceof GatewayError) return `${err.status} ${err.code}`;
    throw err;
  }
}

test('without an APIMExtensionPolicy the engine does nothing', () => {
  const engine = engineOf(`${V}\nkind: SpikeArrest\nmetadata: {name: sa}\nspec: {rate: 1ps}\n`);
  assert.equal(engine.enabled, false);
  assert.deepEqual(engine.hooks, {});
  assert.deepEqual(engine.policies, []);
});

test('an extension without defaultSecurityEnabled or templates runs no policies, but sets the fault format', () => {
  const engine = engineOf(extension('faultFormat: apigee'));
  assert.equal(engine.enabled, true);
  assert.deepEqual(engine.policies, []);
  assert.deepEqual(Object.keys(engine.hooks), ['complete', 'faultFormat']);
  assert.equal(engine.hooks.faultFormat!(), 'apigee');
});

test('faults render in the extension\'s format', async () => {
  const engine = engineOf(extension('defaultSecurityEnabled: true\nfaultFormat: apigee'));
  const err = await Promise.resolve()
    .then(() => engine.hooks.authenticate!(withKey('tg_nope')))
    .then(() => assert.fail('refused'), (e: GatewayError) => e);
  const response = err.toResponse(engine.hooks.faultFormat!());
  assert.equal(response.status, 401);
  assert.deepEqual(JSON.parse(response.body).fault, { faultstring: 'Invalid ApiKey', detail: { errorcode: 'oauth.v2.InvalidApiKey' } });
});

describe('the default chain', () => {
  test('is VerifyAPIKey, then the product quotas', () => {
    const engine = engineOf(extension());
    assert.deepEqual(
      engine.policies.map((p) => `${p.type}/${p.name}`),
      ['verify-api-key/default-verify-api-key', 'quota/default-product-quota', 'llm-token-quota/default-product-token-quota'],
    );
    assert.equal(engine.hooks.faultFormat!(), 'openai');
  });

  test('credentials are checked before model lookup, entitlement after it', async () => {
    const engine = engineOf(extension());
    // authenticate does not look at the model, so an unknown model still gets the gateway's 404 after it.
    assert.equal(await codeOf(() => engine.hooks.authenticate!(withKey('tg_nope', { model: 'no-such-model' }))), '401 oauth.v2.InvalidApiKey');
    assert.equal(await codeOf(() => engine.hooks.authenticate!(withKey('tg_basic', { model: 'no-such-model' }))), 'ok');
    assert.equal(await codeOf(() => run(engine, fakeContext())), '401 steps.oauth.v2.FailedToResolveAPIKey');
    assert.equal(await codeOf(() => run(engine, withKey('tg_basic', { model: 'large' }))), '401 oauth.v2.InvalidApiKeyForGivenResource');
    // The model is the client's (an HTTPRoute URL backend takes any name): quoted in the message only as far as 256.
    const huge = withKey('tg_basic', { model: `large-${'x'.repeat(100_000)}` });
    await assert.rejects(run(engine, huge), (err: GatewayError) => err.code === 'oauth.v2.InvalidApiKeyForGivenResource' && err.message.length < 600);
  });

  test('the first product that covers the request decides, and its quota counts per app and operation set', async () => {
    const engine = engineOf(extension());
    const small = () => withKey('tg_both', { model: 'small' });
    const ok = small();
    await run(engine, ok);
    assert.equal(ok.apim!.product!.name, 'basic');
    assert.equal(ok.responseHeaders['x-ratelimit-limit-requests'], '1');
    // gold would allow it, but basic decides for model "small".
    assert.equal(await codeOf(() => run(engine, small())), '429 policies.ratelimit.QuotaViolation');
    // Another app's counter, and another operation set's counter, are untouched.
    assert.equal(await codeOf(() => run(engine, withKey('tg_basic', { model: 'small' }))), 'ok');
    const large = withKey('tg_both', { model: 'large' });
    await run(engine, large);
    assert.equal(large.apim!.product!.name, 'gold');
    assert.equal(large.responseHeaders['x-ratelimit-remaining-requests'], '4');
    assert.equal(large.responseHeaders['x-ratelimit-limit-tokens'], '1000');
  });
});

describe('a credential policy under a condition', () => {
  const yaml = [
    extension(),
    `${V}\nkind: VerifyAPIKey\nmetadata: {name: web-key}\nspec: {apiKey: {ref: request.header.x-web-key}}\n`,
    `${V}\nkind: ApimTemplate\nmetadata: {name: web}\nspec: {templates: [{condition: "'x-web-key' in request.headers", policies: [{kind: VerifyAPIKey, name: web-key}]}]}\n`,
  ].join('---\n');

  test('leaves the default VerifyAPIKey to check, and count, every request it skips', async () => {
    const engine = engineOf(yaml);
    assert.equal(await codeOf(() => run(engine, fakeContext())), '401 steps.oauth.v2.FailedToResolveAPIKey');
    assert.equal(await codeOf(() => run(engine, withKey('tg_not_a_key'))), '401 oauth.v2.InvalidApiKey');
    const small = (headers: Record<string, string>) => fakeContext({ model: 'small', headers });
    const ctx = small({ 'x-api-key': 'tg_basic' });
    await run(engine, ctx);
    assert.equal(ctx.apim!.product!.name, 'basic');
    assert.equal(ctx.responseHeaders['x-ratelimit-remaining-requests'], '0', 'entitled and counted in the product quota (1 a minute)');
    // Where the condition holds, the key comes from its policy's header; x-api-key is not looked at.
    assert.equal(await codeOf(() => run(engine, small({ 'x-web-key': 'tg_not_a_key', 'x-api-key': 'tg_basic' }))), '401 oauth.v2.InvalidApiKey');
    assert.equal(await codeOf(() => run(engine, small({ 'x-web-key': 'tg_basic', 'x-api-key': 'tg_not_a_key' }))), '429 policies.ratelimit.QuotaViolation');
  });
});

describe('templates', () => {
  const yaml = (rate = '1pm') => [
    extension(),
    `${V}\nkind: SpikeArrest\nmetadata: {name: spike}\nspec: {rate: ${rate}, identifier: {ref: developer.app.id}}\n`,
    `${V}\nkind: VerifyAPIKey\nmetadata: {name: key-from-header}\nspec: {}\n`,
    `${V}\nkind: ApimTemplate\nmetadata: {name: chain}\nspec:\n  templates:\n  - policies: [{kind: SpikeArrest, name: spike}, {kind: VerifyAPIKey, name: key-from-header}]\n    condition: request.path.startsWith("/v1")\n`,
  ].join('---\n');

  test('run in the listed order, credentials first, product quotas last', () => {
    assert.deepEqual(
      engineOf(yaml()).policies.map((p) => p.name),
      ['key-from-header', 'default-verify-api-key', 'spike', 'default-product-quota', 'default-product-token-quota'],
    );
  });

  test('entitlement comes before spike arrest, and a spike-arrested request spends no product quota', async () => {
    const clock = new TestClock(MONDAY);
    // One request per app every 30 s.
    const engine = engineOf(yaml('2pm'), new MemoryCounterStore(), clock);
    assert.equal(await codeOf(() => run(engine, withKey('tg_gold', { url: '/v1/embeddings', operation: 'embeddings' }))), 'ok');
    assert.equal(await codeOf(() => run(engine, withKey('tg_basic', { model: 'large' }))), '401 oauth.v2.InvalidApiKeyForGivenResource');
    assert.equal(await codeOf(() => run(engine, withKey('tg_basic', { model: 'small' }))), 'ok', 'the refused request above used no spike slot');
    assert.equal(await codeOf(() => run(engine, withKey('tg_gold'))), '429 policies.ratelimit.SpikeArrestViolation');
    clock.advance(30_000);
    const ctx = withKey('tg_gold');
    await run(engine, ctx);
    assert.equal(ctx.responseHeaders['x-ratelimit-remaining-requests'], '3', 'two of five used: the spike-arrested one did not count');
  });

  test('on a store in this process the chain runs without a promise: admission, then the settlement', () => {
    const clock = new TestClock(MONDAY);
    const engine = engineOf(yaml('600pm'), new MemoryCounterStore(), clock);
    const ctx = withKey('tg_gold', { body: { max_tokens: 500 } });
    assert.equal(engine.hooks.authenticate!(ctx), undefined);
    assert.equal(engine.hooks.admit!(ctx), undefined, 'spike arrest, product quota and token reservation answered at once');
    assert.equal(ctx.responseHeaders['x-ratelimit-remaining-requests'], '4');
    const reserved = 1000 - Number(ctx.responseHeaders['x-ratelimit-remaining-tokens']);
    ctx.attempts = 1;
    ctx.usage = { inputTokens: reserved - 500, outputTokens: 20, cachedTokens: 0 };
    assert.equal(engine.complete(ctx), undefined, 'settled at once');
    clock.advance(100);
    const next = withKey('tg_gold', { body: { max_tokens: 500 } });
    assert.equal(engine.hooks.authenticate!(next), undefined);
    assert.equal(engine.hooks.admit!(next), undefined);
    assert.equal(Number(next.responseHeaders['x-ratelimit-remaining-tokens']), 1000 - (reserved - 480) - reserved, 'the first reconciled to its usage');
  });
});

describe('config errors name the document and field', () => {
  const cases: [name: string, yaml: string, message: RegExp][] = [
    ['two extension policies', extension() + '---\n' + extension().replace('gateway-ext', 'other-ext'), /APIMExtensionPolicy\/other-ext\): kind: only one APIMExtensionPolicy/],
    ['an unknown policy kind', extension() + `---\n${V}\nkind: ApimTemplate\nmetadata: {name: t}\nspec: {templates: [{policies: [{kind: NoSuchPolicy, name: x}]}]}\n`, /ApimTemplate\/t\): spec.templates\[0\].policies\[0\].kind: unknown policy kind "NoSuchPolicy"/],
    ['a missing policy', extension() + `---\n${V}\nkind: ApimTemplate\nmetadata: {name: t}\nspec: {templates: [{policies: [{kind: SpikeArrest, name: nope}]}]}\n`, /policies\[0\].name: no SpikeArrest named "nope"/],
    [
      'a policy listed twice',
      extension() + `---\n${V}\nkind: SpikeArrest\nmetadata: {name: sa}\nspec: {rate: 1ps}\n---\n${V}\nkind: ApimTemplate\nmetadata: {name: t}\nspec: {templates: [{policies: [{kind: SpikeArrest, name: sa}]}, {policies: [{kind: SpikeArrest, name: sa}]}]}\n`,
      /templates\[1\].policies\[0\]: SpikeArrest\/sa is already listed at .*templates\[0\].policies\[0\]/,
    ],
    [
      'a bad variable',
      extension() + `---\n${V}\nkind: SpikeArrest\nmetadata: {name: sa}\nspec: {rate: 1ps, identifier: {ref: tenant}}\n---\n${V}\nkind: ApimTemplate\nmetadata: {name: t}\nspec: {templates: [{policies: [{kind: SpikeArrest, name: sa}]}]}\n`,
      /SpikeArrest\/sa\): spec: unknown variable "tenant"/,
    ],
    [
      'a product quota without VerifyAPIKey',
      extension('defaultSecurityEnabled: false') + `---\n${V}\nkind: Quota\nmetadata: {name: q}\nspec: {useQuotaConfigInAPIProduct: true}\n---\n${V}\nkind: ApimTemplate\nmetadata: {name: t}\nspec: {templates: [{policies: [{kind: Quota, name: q}]}]}\n`,
      /\(Quota\/q\): spec.useQuotaConfigInAPIProduct: the API product's quota needs VerifyAPIKey/,
    ],
    ['a timeout out of range', extension('timeout: 20s'), /spec.timeout: timeout must be at most 10s/],
  ];
  for (const [name, yaml, message] of cases) {
    test(name, () => assert.throws(() => engineOf(yaml), (err: Error) => (err instanceof ConfigError || err.constructor.name === 'ConfigError') && message.test(err.message)));
  }
});

describe('when the counter store cannot answer', () => {
  test('failOpen lets requests through uncounted', async () => {
    const errors: CounterErrorOutcome[] = [];
    const engine = engineOf(extension('defaultSecurityEnabled: true\nfailOpen: true'), new UnavailableCounterStore(), undefined, undefined, (o) => errors.push(o));
    assert.equal(await codeOf(() => run(engine, withKey('tg_basic', { model: 'small' }))), 'ok');
    assert.equal(await codeOf(() => run(engine, withKey('tg_basic', { model: 'small' }))), 'ok');
    assert.deepEqual(errors, ['failed_open', 'failed_open'], 'one product-quota call each (the set has no token quota)');
  });

  test('otherwise requests are refused with 500 extension_failed', async () => {
    const errors: CounterErrorOutcome[] = [];
    const engine = engineOf(extension(), new UnavailableCounterStore(), undefined, undefined, (o) => errors.push(o));
    assert.equal(await codeOf(() => run(engine, withKey('tg_basic', { model: 'small' }))), '500 extension_failed');
    assert.deepEqual(errors, ['refused']);
    assert.equal(await codeOf(() => run(engine, withKey('tg_nope'))), '401 oauth.v2.InvalidApiKey', 'credentials need no counters');
  });

  test('a store slower than the timeout counts as unavailable', async () => {
    const hanging = new HangingCounterStore();
    try {
      const closed = engineOf(extension('defaultSecurityEnabled: true\ntimeout: 20ms'), hanging);
      const started = performance.now();
      assert.equal(await codeOf(() => run(closed, withKey('tg_basic', { model: 'small' }))), '500 extension_failed');
      assert.ok(performance.now() - started < 1000);
      const open = engineOf(extension('defaultSecurityEnabled: true\ntimeout: 20ms\nfailOpen: true'), hanging);
      assert.equal(await codeOf(() => run(open, withKey('tg_basic', { model: 'small' }))), 'ok');
    } finally {
      await hanging.close();
    }
  });
});

test('when the configuration changes between the phases, a request is admitted consistently', async () => {
  const plain = engineOf(extension('defaultSecurityEnabled: false'));
  assert.equal(plain.hooks.authenticate, undefined);
  assert.equal(plain.hooks.admit, undefined);
  const secured = engineOf(extension());
  // Authenticated by a flow without credentials: the new flow authenticates it before admitting it.
  assert.equal(await codeOf(() => secured.hooks.admit!(fakeContext({ model: 'small' }))), '401 steps.oauth.v2.FailedToResolveAPIKey');
  const fresh = withKey('tg_basic', { model: 'small' });
  await secured.hooks.admit!(fresh);
  assert.equal(fresh.apim!.product!.name, 'basic');
  // Authenticated by the secured flow: its entitlement still runs under the plain one.
  const started = withKey('tg_basic', { model: 'large' });
  await secured.hooks.authenticate!(started);
  assert.equal(await codeOf(() => plain.admit(started)), '401 oauth.v2.InvalidApiKeyForGivenResource');
});

describeOnCounterBackends((counters) => {

  test('complete() reconciles token reservations to the usage', async () => {
    const { identity } = catalog();
    const engine = engineOf(extension(), counters(), new TestClock(MONDAY), identity);
    const ctx = withKey('tg_gold', { body: { max_tokens: 500 } });
    await run(engine, ctx);
    const reserved = 1000 - Number(ctx.responseHeaders['x-ratelimit-remaining-tokens']);
    assert.ok(reserved > 500);
    ctx.attempts = 1;
    // The server counted the prompt as tollgate estimated it (a larger count would raise later estimates: PromptCalibration).
    const prompt = reserved - 500;
    ctx.usage = { inputTokens: prompt, outputTokens: 20, cachedTokens: 0 };
    await engine.complete(ctx);
    const next = withKey('tg_gold', { body: { max_tokens: 500 } });
    await run(engine, next);
    assert.equal(Number(next.responseHeaders['x-ratelimit-remaining-tokens']), 1000 - (prompt + 20) - reserved);
    engine.hooks.complete!(next);
  });

  test('the quota report shows the caller\'s products and what is left', async () => {
    const { identity, basic, gold } = catalog();
    const clock = new TestClock(MONDAY + 30_000);
    const engine = engineOf(extension(), counters(), clock, identity);
    await run(engine, withKey('tg_both', { model: 'large', body: { max_tokens: 100 } }));
    const report = await engine.quotaReport(withKey('tg_both'));
    assert.equal(report.keyId, 'key_both');
    assert.equal(report.app.name, 'both-app');
    assert.equal(report.developer.email, 'ada@example.com');
    assert.deepEqual(report.products.map((p) => [p.name, p.status, p.operationSets.map((s) => s.name)]), [
      ['basic', 'approved', [basic]],
      ['gold', 'approved', [gold]],
    ]);
    const [basicSet] = report.products[0].operationSets;
    assert.deepEqual(basicSet.models, ['small']);
    assert.deepEqual(basicSet.quota, {
      limit: 1,
      interval: 1,
      timeUnit: 'minute',
      used: 0,
      remaining: 1,
      resetAt: new Date(MONDAY + 60_000).toISOString(),
      policy: 'default-product-quota',
      window: 'fixed',
      identifier: 'developer.app.id',
    });
    assert.equal(basicSet.llmTokenQuota, null);
    const [goldSet] = report.products[1].operationSets;
    assert.equal(goldSet.models, null);
    assert.equal(goldSet.quota!.used, 1);
    assert.equal(goldSet.llmTokenQuota!.countOn, 'total');
    assert.ok(goldSet.llmTokenQuota!.used! > 100);
    assert.deepEqual(
      report.quotas.map((q) => [q.policy, q.product, q.operationSet, q.used]),
      [
        ['default-product-quota', 'basic', basic, 0],
        ['default-product-quota', 'gold', gold, 1],
        ['default-product-token-quota', 'gold', gold, goldSet.llmTokenQuota!.used],
      ],
    );
    assert.equal(await codeOf(() => engine.quotaReport(withKey('tg_nope'))), '401 oauth.v2.InvalidApiKey');
  });
});

test('the quota report is not served without API keys', async () => {
  assert.equal(await codeOf(() => engineOf(extension('defaultSecurityEnabled: false')).quotaReport(fakeContext())), '404 route_not_found');
});
