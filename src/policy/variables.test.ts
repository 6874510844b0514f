// Request variables: each name resolves from the context or the policy state; unknown names fail at compile time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KeyRecord } from './identity.js';
import { fakeContext } from './testing.js';
import type { ApimState } from './types.js';
import { MAX_MESSAGE_WEIGHT, compileVariable, compileWeight, setVariable, variableSource, type VariableSource } from './variables.js';

const key: KeyRecord = {
  keyId: 'key_1',
  status: 'approved',
  expiresAt: null,
  appId: 'app-1',
  appName: 'chatbot',
  appStatus: 'approved',
  developerId: 'dev-1',
  developerEmail: 'ada@example.com',
  developerStatus: 'active',
  products: [],
};
const state: ApimState = {
  key,
  product: { name: 'gold', status: 'approved', operationSets: [] },
  operationSet: { name: 'chat', matches: () => true, models: null, objectives: null, quota: null, llmTokenQuota: null },
};
const ctx = fakeContext({ url: '/v1/chat/completions?tenant=acme&x=1', headers: { 'x-tenant': 'blue', 'x-weight': '5' }, model: 'llama' });

const cases: [ref: string, value: string | undefined, source: VariableSource][] = [
  ['client_id', 'key_1', 'key'],
  ['app.id', 'app-1', 'key'],
  ['developer.app.id', 'app-1', 'key'],
  ['developer.app.name', 'chatbot', 'key'],
  ['developer.id', 'dev-1', 'key'],
  ['developer.email', 'ada@example.com', 'key'],
  ['apiproduct.name', 'gold', 'entitlement'],
  ['apiproduct.operationset.name', 'chat', 'entitlement'],
  ['model', 'llama', 'request'],
  ['request.path', '/v1/chat/completions', 'request'],
  ['request.verb', 'POST', 'request'],
  ['client.ip', '127.0.0.1', 'caller'],
  ['request.header.X-Tenant', 'blue', 'caller'],
  ['request.header.x-missing', undefined, 'caller'],
  ['request.queryparam.tenant', 'acme', 'caller'],
  ['request.queryparam.missing', undefined, 'caller'],
];
for (const [ref, value, source] of cases) {
  test(`${ref} → ${value}, from the ${source}`, () => {
    assert.equal(compileVariable(ref)(ctx, state), value);
    assert.equal(variableSource(ref), source);
  });
}

test('a flow variable comes from the request flow', () => assert.equal(variableSource('kvm.tier'), 'request'));

test('identity variables are undefined before VerifyAPIKey', () => assert.equal(compileVariable('developer.app.id')(ctx, {}), undefined));

test('an unknown variable is refused when compiled', () => {
  assert.throws(() => compileVariable('request.body'), /unknown variable "request.body"/);
  assert.throws(() => compileVariable('request.header.'), /unknown variable/);
  assert.throws(() => compileVariable('tenant'), /unknown variable "tenant"/);
  assert.throws(() => compileVariable('constructor'), /unknown variable "constructor"/, 'an Object.prototype name is no variable');
});

test('other names are flow variables that policies set', () => {
  const read = compileVariable('kvm.tier');
  const flowState: ApimState = {};
  assert.equal(read(ctx, flowState), undefined);
  setVariable(flowState, 'kvm.tier', 'gold');
  assert.equal(read(ctx, flowState), 'gold');
});

test('message weights are positive integers up to MAX_MESSAGE_WEIGHT, else 1', () => {
  assert.equal(compileWeight(undefined), null);
  const weigh = (v: string | undefined) => compileWeight('request.header.x-w')!(fakeContext({ headers: v === undefined ? {} : { 'x-w': v } }), {});
  assert.equal(weigh('5'), 5);
  assert.equal(weigh(undefined), 1);
  assert.equal(weigh('0'), 1);
  assert.equal(weigh('-3'), 1);
  assert.equal(weigh('2.5'), 1);
  assert.equal(weigh('lots'), 1);
  assert.equal(weigh(String(MAX_MESSAGE_WEIGHT)), MAX_MESSAGE_WEIGHT);
  assert.equal(weigh('1000000000'), MAX_MESSAGE_WEIGHT, 'more than the bound counts as the bound');
  assert.equal(weigh('9'.repeat(400)), MAX_MESSAGE_WEIGHT, 'beyond a safe integer too');
});
