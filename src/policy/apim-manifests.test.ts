// The apim.googleapis.com/v1 kinds as manifests: defaults, Apigee's shapes, and errors that name the field.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseManifests, type Manifest } from '../config/manifest.js';

const V = 'apiVersion: apim.googleapis.com/v1';

function one(yaml: string): Manifest {
  const [m] = parseManifests(yaml, 'test.yaml');
  return m;
}

function problems(yaml: string): string {
  try {
    parseManifests(yaml, 'test.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.join('\n');
    throw err;
  }
  return '';
}

describe('APIMExtensionPolicy', () => {
  test('defaults: fail closed, 1 s timeout, no default chain, OpenAI errors', () => {
    assert.deepEqual(one(`${V}\nkind: APIMExtensionPolicy\nmetadata: {name: ext}\nspec: {targetRef: {name: gw}}\n`).spec, {
      failOpen: false,
      timeout: 1000,
      defaultSecurityEnabled: false,
      targetRef: { name: 'gw', kind: 'Gateway' },
      faultFormat: 'openai',
    });
  });

  test('the operator\'s fields are accepted', () => {
    const spec = one(`${V}\nkind: APIMExtensionPolicy\nmetadata: {name: ext}\nspec:\n  apigeeEnv: prod\n  location: global\n  failOpen: true\n  timeout: 250ms\n  defaultSecurityEnabled: true\n  targetRef: {name: gw, kind: Gateway, namespace: apim}\n  faultFormat: apigee\n`).spec as Record<string, unknown>;
    assert.equal(spec.timeout, 250);
    assert.equal(spec.faultFormat, 'apigee');
  });

  test('the timeout is 10ms..10s; targetRef is required', () => {
    assert.match(problems(`${V}\nkind: APIMExtensionPolicy\nmetadata: {name: ext}\nspec: {targetRef: {name: gw}, timeout: 5ms}\n`), /spec.timeout: timeout must be at least 10ms/);
    assert.match(problems(`${V}\nkind: APIMExtensionPolicy\nmetadata: {name: ext}\nspec: {targetRef: {name: gw}, timeout: soon}\n`), /spec.timeout: invalid duration "soon"/);
    assert.match(problems(`${V}\nkind: APIMExtensionPolicy\nmetadata: {name: ext}\nspec: {}\n`), /spec.targetRef/);
  });
});

test('APIProduct: approval, attributes and enforcementRefs with their defaults', () => {
  assert.deepEqual(
    one(`${V}\nkind: APIProduct\nmetadata: {name: gold}\nspec:\n  displayName: Gold\n  attributes: [{name: tier, value: '1'}]\n  enforcementRefs: [{name: ext}]\n`).spec,
    {
      displayName: 'Gold',
      approvalType: 'auto',
      attributes: [{ name: 'tier', value: '1' }],
      enforcementRefs: [{ name: 'ext', kind: 'APIMExtensionPolicy', group: 'apim.googleapis.com' }],
    },
  );
  assert.match(problems(`${V}\nkind: APIProduct\nmetadata: {name: gold}\nspec: {displayName: Gold, approvalType: sometimes}\n`), /spec.approvalType/);
});

test('APIOperationSet: quotas, operations and tollgate\'s llmOperations', () => {
  const spec = one(
    `${V}\nkind: APIOperationSet\nmetadata: {name: chat}\nspec:\n  apiProductRefs: [{name: gold}]\n  quota: {limit: 100, interval: 1, timeUnit: minute}\n  restOperations: [{name: chat, path: /v1/chat/completions, methods: [post]}]\n  llmOperations:\n    models: [llama]\n    llmTokenQuota: {limit: 10000, interval: 1, timeUnit: hour}\n`,
  ).spec as Record<string, any>;
  assert.deepEqual(spec.apiProductRefs, [{ name: 'gold', kind: 'APIProduct', group: 'apim.googleapis.com' }]);
  assert.deepEqual(spec.restOperations[0].methods, ['POST']);
  assert.equal(spec.llmOperations.llmTokenQuota.countOn, 'total');
  assert.match(problems(`${V}\nkind: APIOperationSet\nmetadata: {name: x}\nspec: {apiProductRefs: [{name: gold}], quota: {limit: 1, timeUnit: fortnight}}\n`), /spec.quota.timeUnit/);
  assert.match(problems(`${V}\nkind: APIOperationSet\nmetadata: {name: x}\nspec: {apiProductRefs: []}\n`), /spec.apiProductRefs/);
  assert.match(problems(`${V}\nkind: APIOperationSet\nmetadata: {name: x}\nspec: {apiProductRefs: [{name: p}], restOperations: [{name: a, path: v1}]}\n`), /spec.restOperations\[0\].path/);
});

test('ApimTemplate and ApimTemplateRule are stored as declared', () => {
  const template = one(`${V}\nkind: ApimTemplate\nmetadata: {name: t}\nspec:\n  apimTemplateRule: {name: rules}\n  templates:\n  - condition: request.headers['x-beta'] == 'yes'\n    policies: [{kind: SpikeArrest, name: sa, group: apim.googleapis.com}]\n`);
  assert.equal((template.spec as any).templates[0].condition, "request.headers['x-beta'] == 'yes'");
  const rule = one(`${V}\nkind: ApimTemplateRule\nmetadata: {name: rules}\nspec: {requiredList: [{kind: SpikeArrest}], denyList: [{kind: JavaScript}]}\n`);
  assert.deepEqual(rule.spec, { requiredList: [{ kind: 'SpikeArrest' }], denyList: [{ kind: 'JavaScript' }] });
  assert.match(problems(`${V}\nkind: ApimTemplate\nmetadata: {name: t}\nspec: {templates: [{policies: []}]}\n`), /spec.templates\[0\].policies/);
});

test('policy kinds are served under apim.googleapis.com/v1 only', () => {
  assert.match(problems(`apiVersion: apim.googleapis.com/v1alpha1\nkind: SpikeArrest\nmetadata: {name: sa}\nspec: {rate: 1ps}\n`), /is not served for SpikeArrest/);
  for (const kind of ['VerifyAPIKey', 'SpikeArrest', 'Quota', 'LLMTokenQuota', 'PromptTokenLimit']) {
    assert.doesNotMatch(problems(`${V}\nkind: ${kind}\nmetadata: {name: p}\nspec: {}\n`), /unknown kind/);
  }
});
