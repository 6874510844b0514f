// Template rules, table-driven: deny, require and allow lists, named and organization-wide rules, product references.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkGovernance, governanceFacts, ruleBreaches, type GovernanceFacts, type RuleFacts } from './governance.js';
import { readFileSync } from 'node:fs';
import { parseManifests } from './manifest.js';

const rule = (name: string, lists: Partial<Omit<RuleFacts, 'name'>> = {}): RuleFacts => ({ name, requiredList: [], denyList: [], ...lists });

const breaches: [name: string, kinds: string[], rule: RuleFacts, expected: string[]][] = [
  ['nothing to break', ['SpikeArrest'], rule('r'), []],
  ['a denied kind', ['SpikeArrest', 'JavaScript'], rule('r', { denyList: ['JavaScript'] }), ['JavaScript is on the denyList']],
  ['a required kind missing', ['Quota'], rule('r', { requiredList: ['SpikeArrest'] }), ['SpikeArrest is on the requiredList but not in the template']],
  ['a required kind present', ['SpikeArrest', 'Quota'], rule('r', { requiredList: ['SpikeArrest'] }), []],
  ['a kind off the allowList', ['SpikeArrest', 'CORS'], rule('r', { allowList: ['SpikeArrest'] }), ['CORS is not on the allowList']],
  ['an empty allowList allows nothing', ['Quota'], rule('r', { allowList: [] }), ['Quota is not on the allowList']],
  [
    'every breach is named',
    ['JavaScript'],
    rule('r', { denyList: ['JavaScript'], requiredList: ['SpikeArrest'], allowList: ['SpikeArrest'] }),
    ['JavaScript is on the denyList', 'SpikeArrest is on the requiredList but not in the template', 'JavaScript is not on the allowList'],
  ],
];
for (const [name, kinds, r, expected] of breaches) test(`ruleBreaches: ${name}`, () => assert.deepEqual(ruleBreaches(kinds, r), expected));

test('ruleBreaches: a required kind listed only under a condition does not count (before, `condition: "false"` satisfied it)', () => {
  assert.deepEqual(ruleBreaches(['SpikeArrest', 'Quota'], rule('r', { requiredList: ['SpikeArrest'] }), ['Quota']), ['SpikeArrest is on the requiredList but listed only under a condition']);
  assert.deepEqual(ruleBreaches(['SpikeArrest'], rule('r', { requiredList: ['SpikeArrest'] }), ['SpikeArrest']), []);
});

const noJs = rule('no-js', { denyList: ['JavaScript'] });
const needSa = rule('need-sa', { requiredList: ['SpikeArrest'] });
const sets: [name: string, facts: GovernanceFacts, expected: string[]][] = [
  ['no rules, no violations', { templates: [{ name: 't', kinds: ['JavaScript'] }], rules: [], products: [] }, []],
  [
    'a rule no template names binds every template',
    { templates: [{ name: 'a', kinds: ['JavaScript'] }, { name: 'b', kinds: ['Quota'] }], rules: [noJs], products: [] },
    ['ApimTemplate/a breaks ApimTemplateRule/no-js: JavaScript is on the denyList'],
  ],
  [
    'a named rule binds only the templates that name it',
    { templates: [{ name: 'a', rule: 'need-sa', kinds: ['Quota'] }, { name: 'b', kinds: ['Quota'] }], rules: [needSa], products: [] },
    ['ApimTemplate/a breaks ApimTemplateRule/need-sa: SpikeArrest is on the requiredList but not in the template'],
  ],
  [
    'a template answers to its own rule and the organization-wide ones',
    { templates: [{ name: 'a', rule: 'need-sa', kinds: ['JavaScript'] }], rules: [needSa, noJs], products: [] },
    [
      'ApimTemplate/a breaks ApimTemplateRule/need-sa: SpikeArrest is on the requiredList but not in the template',
      'ApimTemplate/a breaks ApimTemplateRule/no-js: JavaScript is on the denyList',
    ],
  ],
  ['a missing rule', { templates: [{ name: 'a', rule: 'gone', kinds: [] }], rules: [], products: [] }, ['ApimTemplate/a names ApimTemplateRule/gone, which does not exist']],
  [
    'a product naming a missing template',
    { templates: [{ name: 'a', kinds: [] }], rules: [], products: [{ name: 'gold', templateRefs: ['a', 'nope'] }] },
    ['APIProduct/gold names ApimTemplate/nope, which does not exist'],
  ],
];
for (const [name, facts, expected] of sets) test(`checkGovernance: ${name}`, () => assert.deepEqual(checkGovernance(facts).map((v) => v.message), expected));

test('facts come from the manifests', () => {
  const V = 'apiVersion: apim.googleapis.com/v1';
  const manifests = parseManifests(
    [
      `${V}\nkind: ApimTemplateRule\nmetadata: {name: r}\nspec: {denyList: [{kind: JavaScript}], allowList: [{kind: SpikeArrest}]}`,
      `${V}\nkind: ApimTemplate\nmetadata: {name: t}\nspec: {apimTemplateRule: {name: r}, templates: [{policies: [{kind: SpikeArrest, name: sa}]}, {policies: [{kind: Quota, name: q}]}]}`,
      `${V}\nkind: APIProduct\nmetadata: {name: gold}\nspec: {displayName: Gold, templateRefs: [{name: t}]}`,
    ].join('\n---\n'),
    'g.yaml',
  );
  assert.deepEqual(governanceFacts(manifests), {
    templates: [{ name: 't', rule: 'r', kinds: ['SpikeArrest', 'Quota'], always: ['SpikeArrest', 'Quota'] }],
    rules: [{ name: 'r', requiredList: [], denyList: ['JavaScript'], allowList: ['SpikeArrest'] }],
    products: [{ name: 'gold', templateRefs: ['t'] }],
  });
});

test('the quickstart\'s rule binds every template, a new one too (before, naming it in the quickstart template made it bind that one alone)', () => {
  const quickstart = readFileSync(new URL('../../examples/quickstart/apim.yaml', import.meta.url), 'utf8');
  const added = 'apiVersion: apim.googleapis.com/v1\nkind: ApimTemplate\nmetadata: {name: sneaky}\nspec: {templates: [{policies: [{kind: JavaScript, name: js}]}]}';
  const violations = checkGovernance(governanceFacts(parseManifests(`${quickstart}\n---\n${added}`, 'apim.yaml'))).map((v) => v.message);
  assert.deepEqual(violations, [
    'ApimTemplate/sneaky breaks ApimTemplateRule/platform-rules: JavaScript is on the denyList',
    'ApimTemplate/sneaky breaks ApimTemplateRule/platform-rules: SpikeArrest is on the requiredList but not in the template',
  ]);
});
