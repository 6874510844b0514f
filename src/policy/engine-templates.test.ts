// Templates in the engine: CEL conditions per phase, product templates after entitlement, governance at load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifests } from '../config/manifest.js';
import type { RequestContext } from '../gateway/context.js';
import { GatewayError } from '../gateway/errors.js';
import { MemoryCounterStore } from '../store/counters/memory.js';
import { createPolicyEngine, type PolicyEngine } from './engine.js';
import { MemoryIdentitySource } from './memory-identity.js';
import { fakeContext, unique, type FakeRequest } from './testing.js';

const V = 'apiVersion: apim.googleapis.com/v1';
const doc = (kind: string, name: string, spec: string) => `${V}\nkind: ${kind}\nmetadata: {name: ${name}}\nspec: ${spec}\n`;
const ext = (secure = true) => doc('APIMExtensionPolicy', 'ext', `{targetRef: {name: gw}, defaultSecurityEnabled: ${secure}}`);

function engineOf(...docs: string[]): PolicyEngine {
  const identity = new MemoryIdentitySource([
    { name: unique('gold-set'), spec: { apiProductRefs: [{ name: 'gold' }] } },
    { name: unique('basic-set'), spec: { apiProductRefs: [{ name: 'basic' }] } },
  ]);
  identity.add({ key: 'tg_gold', products: ['gold'] });
  identity.add({ key: 'tg_basic', products: ['basic'] });
  return createPolicyEngine({ manifests: parseManifests(docs.join('---\n'), 'test.yaml'), counters: new MemoryCounterStore(), identity });
}

async function codeOf(engine: PolicyEngine, ctx: RequestContext): Promise<string> {
  try {
    await engine.hooks.authenticate?.(ctx);
    await engine.hooks.admit?.(ctx);
    return 'ok';
  } catch (err) {
    if (err instanceof GatewayError) return `${err.status} ${err.code}`;
    throw err;
  }
}

const req = (key: string, r: FakeRequest = {}) => fakeContext({ ...r, headers: { 'x-api-key': key, ...r.headers } });

test('a template runs its policies only when its condition holds, per request', async () => {
  const sa = unique('sa');
  const engine = engineOf(
    ext(),
    doc('SpikeArrest', sa, '{rate: 1pm}'),
    doc('ApimTemplate', 't', `{templates: [{condition: "model == 'llama' && request.headers['x-tier'] == 'free'", policies: [{kind: SpikeArrest, name: ${sa}}]}]}`),
  );
  const free = { model: 'llama', headers: { 'x-tier': 'free' } };
  assert.equal(await codeOf(engine, req('tg_gold', free)), 'ok');
  assert.equal(await codeOf(engine, req('tg_gold', free)), '429 policies.ratelimit.SpikeArrestViolation');
  assert.equal(await codeOf(engine, req('tg_gold', { model: 'other', headers: { 'x-tier': 'free' } })), 'ok');
  assert.equal(await codeOf(engine, req('tg_gold', { model: 'llama' })), 'ok', 'no x-tier header: the condition errs, so it is false');
});

test('a condition on the product sees it once entitlement has run', async () => {
  const sa = unique('sa');
  const engine = engineOf(ext(), doc('SpikeArrest', sa, '{rate: 1pm}'), doc('ApimTemplate', 't', `{templates: [{condition: "apiproduct.name == 'basic'", policies: [{kind: SpikeArrest, name: ${sa}}]}]}`));
  for (let i = 0; i < 2; i++) assert.equal(await codeOf(engine, req('tg_gold')), 'ok');
  assert.equal(await codeOf(engine, req('tg_basic')), 'ok');
  assert.equal(await codeOf(engine, req('tg_basic')), '429 policies.ratelimit.SpikeArrestViolation');
});

test('a product template runs after entitlement, only for that product', async () => {
  const sa = unique('sa');
  const engine = engineOf(
    ext(),
    doc('SpikeArrest', sa, '{rate: 1pm}'),
    doc('ApimTemplate', 'gold-only', `{templates: [{policies: [{kind: SpikeArrest, name: ${sa}}]}]}`),
    doc('APIProduct', 'gold', '{displayName: Gold, templateRefs: [{name: gold-only}]}'),
  );
  assert.deepEqual(engine.policies.map((p) => p.name), ['default-verify-api-key', sa, 'default-product-quota', 'default-product-token-quota']);
  for (let i = 0; i < 2; i++) assert.equal(await codeOf(engine, req('tg_basic')), 'ok');
  assert.equal(await codeOf(engine, req('tg_gold')), 'ok');
  assert.equal(await codeOf(engine, req('tg_gold')), '429 policies.ratelimit.SpikeArrestViolation');
});

const refused: [name: string, docs: string[], message: RegExp][] = [
  ['a bad condition', [doc('SpikeArrest', 'sa', '{rate: 1ps}'), doc('ApimTemplate', 't', '{templates: [{condition: "tenant == 1", policies: [{kind: SpikeArrest, name: sa}]}]}')], /\(ApimTemplate\/t\): spec.templates\[0\].condition: unknown variable "tenant"/],
  ['a credential policy in a product template', [doc('VerifyAPIKey', 'k', '{}'), doc('ApimTemplate', 't', '{templates: [{policies: [{kind: VerifyAPIKey, name: k}]}]}'), doc('APIProduct', 'gold', '{displayName: G, templateRefs: [{name: t}]}')], /VerifyAPIKey\/k\): a verify-api-key policy runs before entitlement, so APIProduct\/gold cannot run it/],
  ['a product naming a missing template', [doc('APIProduct', 'gold', '{displayName: G, templateRefs: [{name: nope}]}')], /\(APIProduct\/gold\): APIProduct\/gold names ApimTemplate\/nope, which does not exist/],
  [
    'a template breaking a rule',
    [doc('SpikeArrest', 'sa', '{rate: 1ps}'), doc('ApimTemplateRule', 'r', '{denyList: [{kind: SpikeArrest}]}'), doc('ApimTemplate', 't', '{templates: [{policies: [{kind: SpikeArrest, name: sa}]}]}')],
    /\(ApimTemplateRule\/r\): ApimTemplate\/t breaks ApimTemplateRule\/r: SpikeArrest is on the denyList/,
  ],
  // Rules compare kinds as text: a misspelt one would deny nothing.
  ['a rule naming a policy kind that does not exist', [doc('ApimTemplateRule', 'r', '{denyList: [{kind: JavaScript}, {kind: Javascript}]}')], /\(ApimTemplateRule\/r\): spec.denyList\[1\].kind: unknown policy kind "Javascript" \(known: [^)]*JavaScript/],
  ['an unknown kind on a requiredList or allowList', [doc('ApimTemplateRule', 'r', '{requiredList: [{kind: SpikeArest}], allowList: [{kind: Quota}, {kind: CORs}]}')], /spec.requiredList\[0\].kind: unknown policy kind "SpikeArest".*spec.allowList\[1\].kind: unknown policy kind "CORs"/s],
];
for (const [name, docs, message] of refused) test(`config load refuses ${name}`, () => assert.throws(() => engineOf(ext(), ...docs), message));

