// VerifyAPIKey: each credential fault, and entitlement by operation set (paths, methods, models, first product decides).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { upstreamUrl } from '../../../gateway/context.js';
import { GatewayError } from '../../../gateway/errors.js';
import { MemoryCounterStore } from '../../../store/counters/memory.js';
import { MemoryIdentitySource } from '../../memory-identity.js';
import { fakeContext, testDeps, type FakeRequest } from '../../testing.js';
import type { ApimState } from '../../types.js';
import { VERIFY_API_KEY_FAULTS as F, verifyApiKey } from './verify-api-key.js';

const NOW = Date.parse('2025-06-02T12:00:00Z');
const identity = new MemoryIdentitySource([
  { name: 'chat-small', spec: { apiProductRefs: [{ name: 'basic' }], restOperations: [{ name: 'chat', path: '/v1/chat/completions', methods: ['POST'] }], llmOperations: { models: ['small'] } } },
  { name: 'everything', spec: { apiProductRefs: [{ name: 'gold' }] } },
  { name: 'embeddings', spec: { apiProductRefs: [{ name: 'embed' }], restOperations: [{ name: 'emb', path: '/v1/embeddings' }] } },
  { name: 'batch-only', spec: { apiProductRefs: [{ name: 'batch-tier' }], llmOperations: { objectives: ['batch'] } } },
  { name: 'any-priority', spec: { apiProductRefs: [{ name: 'premium' }], llmOperations: { objectives: ['critical', 'batch'] } } },
]);
identity.add({ key: 'tg_batch', products: ['batch-tier'] });
identity.add({ key: 'tg_batch_premium', products: ['batch-tier', 'premium'] });
identity.add({ key: 'tg_good', keyId: 'key_good', products: ['basic'] });
identity.add({ key: 'tg_two', keyId: 'key_two', products: ['basic', 'gold'] });
identity.add({ key: 'tg_revoked', status: 'revoked', products: ['gold'] });
identity.add({ key: 'tg_pending', status: 'pending', products: ['gold'] });
identity.add({ key: 'tg_expired', expiresAt: NOW - 1, products: ['gold'] });
identity.add({ key: 'tg_later', expiresAt: NOW + 1, products: ['gold'] });
identity.add({ key: 'tg_app_revoked', appStatus: 'revoked', products: ['gold'] });
identity.add({ key: 'tg_app_pending', appStatus: 'pending', products: ['gold'] });
identity.add({ key: 'tg_dev_inactive', developerStatus: 'inactive', products: ['gold'] });
identity.add({ key: 'tg_no_sets', products: ['unknown-product'] });
identity.add({ key: 'tg_product_pending', products: [{ name: 'gold', status: 'pending' }, 'basic'] });

const deps = testDeps(new MemoryCounterStore(), { identity, now: () => NOW });
const policy = verifyApiKey('verify', {}, deps);

function authenticate(key: string | undefined, req: FakeRequest = {}): ApimState {
  const state: ApimState = {};
  policy.authenticate!(fakeContext({ ...req, headers: key === undefined ? {} : { 'x-api-key': key } }), state);
  return state;
}

function admit(key: string, req: FakeRequest = {}): ApimState {
  const ctx = fakeContext({ ...req, headers: { authorization: `Bearer ${key}` } });
  const state: ApimState = {};
  policy.authenticate!(ctx, state);
  policy.admit!(ctx, state);
  return state;
}

function fault(code: string, status = 401) {
  return (err: unknown) => err instanceof GatewayError && err.code === code && err.status === status && err.type === 'authentication_error';
}

describe('credentials', () => {
  test('a good key identifies the key, app and developer', () => {
    const state = authenticate('tg_good');
    assert.equal(state.key!.keyId, 'key_good');
    assert.equal(state.product, undefined);
  });

  const faults: [name: string, key: string | undefined, code: string][] = [
    ['missing', undefined, F.failedToResolveApiKey],
    ['unknown', 'tg_nope', F.invalidApiKey],
    ['revoked key', 'tg_revoked', F.apiKeyNotApproved],
    ['pending key', 'tg_pending', F.apiKeyNotApproved],
    ['expired key', 'tg_expired', F.consumerKeyExpired],
    ['revoked app', 'tg_app_revoked', F.appNotApproved],
    ['pending app', 'tg_app_pending', F.appNotApproved],
    ['inactive developer', 'tg_dev_inactive', F.appNotApproved],
  ];
  for (const [name, key, code] of faults) test(`${name} → 401 ${code}`, () => assert.throws(() => authenticate(key), fault(code)));

  test('a key that expires later still works', () => assert.equal(authenticate('tg_later').key!.keyId !== undefined, true));

  test('a JWT in Authorization is not taken for an API key', () => {
    const state: ApimState = {};
    assert.throws(() => policy.authenticate!(fakeContext({ headers: { authorization: 'Bearer h.p.s' } }), state), fault(F.failedToResolveApiKey));
  });

  test('apiKey.ref reads the key from another variable', () => {
    const custom = verifyApiKey('custom', { apiKey: { ref: 'request.queryparam.apikey' } }, deps);
    const state: ApimState = {};
    const ctx = fakeContext({ url: '/v1/chat/completions?lang=en%20GB&apikey=tg_good' });
    custom.authenticate!(ctx, state);
    assert.equal(state.key!.keyId, 'key_good');
    assert.equal(upstreamUrl(ctx), '/v1/chat/completions?lang=en+GB', 'the key is not sent upstream');
    assert.equal(ctx.url, '/v1/chat/completions?lang=en%20GB&apikey=tg_good', 'later policies still read it (a quota by key, say)');
    assert.throws(() => custom.authenticate!(fakeContext({ headers: { 'x-api-key': 'tg_good' } }), {}), fault(F.failedToResolveApiKey));
    const without = fakeContext({ url: '/v1/chat/completions?lang=en%20GB' });
    assert.throws(() => custom.authenticate!(without, {}));
    assert.equal(upstreamUrl(without), '/v1/chat/completions?lang=en%20GB', 'a query without the key is left as the client wrote it');
    const inHeader = fakeContext({ headers: { 'x-key': 'tg_good' } });
    verifyApiKey('custom', { apiKey: { ref: 'request.header.X-Key' } }, deps).authenticate!(inHeader, {});
    assert.deepEqual(inHeader.upstreamHeaders, { 'x-key': null }, 'the header is removed upstream');
  });
});

describe('entitlement', () => {
  test('the operation set grants its path, method and models', () => {
    const state = admit('tg_good', { model: 'small' });
    assert.equal(state.product!.name, 'basic');
    assert.equal(state.operationSet!.name, 'chat-small');
  });

  const refused: [name: string, req: FakeRequest][] = [
    ['a model outside the set', { model: 'large' }],
    ['a path outside the set', { url: '/v1/embeddings', operation: 'embeddings', model: 'small' }],
    ['a method outside the set', { method: 'PUT', model: 'small' }],
  ];
  for (const [name, req] of refused) {
    test(`${name} → 401 ${F.invalidApiKeyForGivenResource}`, () => assert.throws(() => admit('tg_good', req), fault(F.invalidApiKeyForGivenResource)));
  }

  test('a product without operation sets grants nothing', () => {
    assert.throws(() => admit('tg_no_sets', { model: 'small' }), fault(F.invalidApiKeyForGivenResource));
  });

  test('a set without models allows every model; a request without a model needs such a set', () => {
    assert.equal(admit('tg_two', { model: 'anything' }).operationSet!.name, 'everything');
    const ctx = fakeContext({ headers: { 'x-api-key': 'tg_good' }, url: '/v1/chat/completions' });
    ctx.model = undefined;
    const state: ApimState = {};
    policy.authenticate!(ctx, state);
    assert.throws(() => policy.admit!(ctx, state), fault(F.invalidApiKeyForGivenResource));
  });

  test('the first product in the app\'s order that covers the request decides', () => {
    assert.equal(admit('tg_two', { model: 'small' }).product!.name, 'basic');
    assert.equal(admit('tg_two', { model: 'large' }).product!.name, 'gold');
  });

  test('a product grant that is not approved is skipped', () => {
    assert.equal(admit('tg_product_pending', { model: 'small' }).product!.name, 'basic');
    assert.throws(() => admit('tg_product_pending', { model: 'large' }), fault(F.invalidApiKeyForGivenResource));
  });
});

describe('objectives: a product lets its callers name only its own priorities', () => {
  const withObjective = (key: string, objective?: string) => {
    const ctx = fakeContext({ model: 'm', headers: { 'x-api-key': key, ...(objective && { 'x-gateway-inference-objective': objective }) } });
    const state: ApimState = {};
    policy.authenticate!(ctx, state);
    policy.admit!(ctx, state);
    return state;
  };

  test('an objective the operation set lists, or none at all, is granted', () => {
    assert.equal(withObjective('tg_batch', 'batch').operationSet!.name, 'batch-only');
    assert.equal(withObjective('tg_batch').operationSet!.name, 'batch-only');
  });

  test(`a cheap tier naming a critical objective → 401 ${F.invalidApiKeyForGivenResource}, naming the objective`, () => {
    assert.throws(
      () => withObjective('tg_batch', 'critical'),
      (err: unknown) => fault(F.invalidApiKeyForGivenResource)(err) && /objective "critical"/.test((err as Error).message),
    );
  });

  test('the first product that grants the objective decides', () => {
    assert.equal(withObjective('tg_batch_premium', 'critical').product!.name, 'premium');
    assert.equal(withObjective('tg_batch_premium', 'batch').product!.name, 'batch-tier');
  });
});

describe('config', () => {
  test('unknown fields and variables are refused', () => {
    assert.throws(() => verifyApiKey('v', { apikey: {} }, deps), /Unrecognized key/);
    assert.throws(() => verifyApiKey('v', { apiKey: { ref: 'nowhere' } }, deps), /unknown variable "nowhere"/);
  });
  test('instances carry type and name', () => {
    assert.equal(policy.type, 'verify-api-key');
    assert.equal(policy.name, 'verify');
  });
});
