import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Manifest } from '../config/manifest.js';
import { narrowedTemplates, widenedTemplates } from './template-scope.js';

const doc = (kind: string, name: string, spec: unknown = {}): Manifest => ({ apiVersion: 'apim.googleapis.com/v1', kind, metadata: { name }, spec, source: 'test', index: 0 });
const template = (name: string) => doc('ApimTemplate', name, { templates: [] });
const product = (name: string, ...refs: string[]) => doc('APIProduct', name, { templateRefs: refs.map((r) => ({ name: r, kind: 'ApimTemplate' })) });

describe('widenedTemplates', () => {
  test('a product deleted while its template stays would make the template gateway-wide', () => {
    const problems = widenedTemplates([template('trial-t'), product('trial', 'trial-t')], [template('trial-t')]);
    assert.equal(problems.length, 1);
    assert.match(problems[0], /ApimTemplate\/trial-t: runs only for the requests of APIProduct\/trial/);
  });

  test('templateRefs edited to drop the template is the same widening', () => {
    assert.equal(widenedTemplates([template('t'), product('p', 't')], [template('t'), product('p')]).length, 1);
  });

  test('deleting both, another product still naming it, or a template that was gateway-wide already: no problem', () => {
    assert.deepEqual(widenedTemplates([template('t'), product('p', 't')], []), []);
    assert.deepEqual(widenedTemplates([template('t'), product('p', 't'), product('q', 't')], [template('t'), product('q', 't')]), []);
    assert.deepEqual(widenedTemplates([template('t'), product('p')], [template('t')]), []);
  });

  test('a template created after a product already named it was never gateway-wide: nothing widens', () => {
    assert.deepEqual(widenedTemplates([product('p', 't')], [template('t'), product('p', 't')]), []);
    // ... and one whose product named it before it existed, then let go, is a new gateway-level template (as applied)
    assert.deepEqual(widenedTemplates([product('p', 't')], [template('t')]), []);
  });

  test('a template deleted while a product still names it: a template applied later under the name would be that product\'s', () => {
    const problems = widenedTemplates([template('t'), product('p', 't'), product('q', 't')], [product('p', 't'), product('q', 't')]);
    assert.equal(problems.length, 1);
    assert.match(problems[0], /ApimTemplate\/t: APIProduct\/p, APIProduct\/q would still name it in templateRefs/);
  });

  test('a product naming a template that was missing already is not a problem of this change', () => {
    assert.deepEqual(widenedTemplates([product('p', 't'), template('u')], [product('p', 't')]), []);
  });
});

describe('narrowedTemplates', () => {
  const notFiles = () => false;

  test('a product newly naming a template no product named would take it off every other request', () => {
    const narrowed = narrowedTemplates([template('global'), product('p')], [product('trial', 'other', 'global')], notFiles);
    assert.deepEqual(narrowed.map(({ product, ref }) => [product, ref]), [['trial', 1]]);
    assert.match(narrowed[0].message, /^ApimTemplate\/global: no product names it, so it runs for every request; APIProduct\/trial naming it would make it run only for the requests entitled through that product; give APIProduct\/trial a template of its own/);
  });

  test('a template the --config files declare: only the files can make it a product\'s', () => {
    const [narrowed] = narrowedTemplates([template('global')], [product('trial', 'global')], (name) => name === 'global');
    assert.match(narrowed.message, /the --config files declare it, so only they can make it a product's/);
  });

  test('a template created in the same change, one a product named already, or a missing one: nothing narrows', () => {
    assert.deepEqual(narrowedTemplates([], [template('t'), product('p', 't')], notFiles), []);
    assert.deepEqual(narrowedTemplates([template('t'), product('p', 't')], [product('q', 't')], notFiles), []);
    assert.deepEqual(narrowedTemplates([template('u')], [product('p', 't')], notFiles), []);
  });
});
