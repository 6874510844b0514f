// Template rules, table-driven: deny, require and allow lists, named and organization-wide rules, product references.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkGovernance, governanceFacts, narrowedRules, ruleBreaches, type GovernanceFacts, type RuleFacts, type TemplateFacts } from './governance.js';
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

// A change naming a rule that bound every template made it bind the naming templates alone: one compliant "decoy"
// template took an operator's rule off every other template, and a JavaScript template it denied went in.
const orgWideBefore: GovernanceFacts = { templates: [{ name: 'a', kinds: ['SpikeArrest'] }], rules: [noJs], products: [] };
const narrowing: [name: string, before: GovernanceFacts, changed: TemplateFacts[], expected: string[]][] = [
  ['a template naming an organization-wide rule', orgWideBefore, [{ name: 'decoy', rule: 'no-js', kinds: ['SpikeArrest'] }], ['ApimTemplate/decoy']],
  ['...also when it is the only template (the rule bound every template to come)', { templates: [], rules: [noJs], products: [] }, [{ name: 'decoy', rule: 'no-js', kinds: [] }], ['ApimTemplate/decoy']],
  ['...also an existing template that named no rule before', orgWideBefore, [{ name: 'a', rule: 'no-js', kinds: ['SpikeArrest'] }], ['ApimTemplate/a']],
  ['a template naming a rule other templates name already', { ...orgWideBefore, templates: [{ name: 'a', rule: 'no-js', kinds: [] }] }, [{ name: 'b', rule: 'no-js', kinds: [] }], []],
  ['a rule created with the templates naming it (absent before)', { templates: [], rules: [], products: [] }, [{ name: 'a', rule: 'no-js', kinds: [] }], []],
  ['a template naming no rule', orgWideBefore, [{ name: 'b', kinds: ['JavaScript'] }], []],
];
for (const [name, before, changed, expected] of narrowing) {
  test(`narrowedRules: ${name}`, () => assert.deepEqual(narrowedRules(before, changed).map((v) => v.subject), expected));
}

test('narrowedRules names the template, the rule and why', () => {
  const [v] = narrowedRules(orgWideBefore, [{ name: 'decoy', rule: 'no-js', kinds: [] }]);
  assert.equal(v.rule, 'no-js');
  assert.match(v.message, /^ApimTemplate\/decoy names ApimTemplateRule\/no-js, which no template names, so it binds every template; naming it would make it bind only the templates naming it/);
});
