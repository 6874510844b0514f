// What a rule or a template covers follows from what names it: a rule no template names binds every template, a
// template no product names runs for every request. An admin-API apply naming such a rule from a compliant "decoy"
// template took it off every other template (a denied JavaScript template then ran), and one naming such a template
// from a product took it off every other request, even when the --config files declared the rule or template. An
// apply may widen what they cover, never narrow it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { silentLogger } from '../src/lib/logger.js';
import type { Manifest } from '../src/config/manifest.js';
import { call } from './helpers/apim-admin.js';
import { manifest, poolAndModel } from './helpers/manifests.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const doc = (kind: string, name: string, spec: unknown) => ({ apiVersion: 'apim.googleapis.com/v1', kind, metadata: { name }, spec });
const extension = manifest('APIMExtensionPolicy', 'ext', { targetRef: { name: 'tollgate' } });
const template = (name: string, policies: { kind: string; name: string }[], rule?: string) => doc('ApimTemplate', name, { ...(rule && { apimTemplateRule: { name: rule } }), templates: [{ policies }] });
const product = (name: string, ...templates: string[]) => doc('APIProduct', name, { displayName: name, templateRefs: templates.map((t) => ({ name: t })) });
const spikeArrest = (name: string, rate: string) => doc('SpikeArrest', name, { rate });
const script = doc('JavaScript', 'evil', { source: "context.setVariable('request.header.x-evil', 'ran')", timeLimit: '5s' });

type Details = { path: string; message: string }[];
const detailsOf = (body: any): Details => body.error?.details ?? [];

let stub: Stub;
before(async () => {
  stub = await startStub();
});
after(() => stub.close());

function start(files: Manifest[]): Promise<Gateway> {
  return startGateway({ configPaths: [], manifests: [...poolAndModel([stub.url]), extension, ...files], ...LOOPBACK, logger: silentLogger });
}

async function chat(gw: Gateway): Promise<number> {
  const r = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }) });
  await r.arrayBuffer();
  return r.status;
}

describe('an organization-wide rule', () => {
  let gw: Gateway;
  before(async () => {
    gw = await start([manifest('ApimTemplateRule', 'org', { denyList: [{ kind: 'JavaScript' }] })]);
  });
  after(() => gw.close());

  test('the --config files\' rule: a decoy template naming it is refused, so the JavaScript it denies does not get in beside it', async () => {
    const alone = await call(gw.adminUrl, 'POST', '/v1/apply', [script, template('evil-t', [{ kind: 'JavaScript', name: 'evil' }])]);
    assert.equal(alone.status, 400, JSON.stringify(alone.body));

    const decoy = template('decoy', [{ kind: 'SpikeArrest', name: 'sa' }], 'org');
    const r = await call(gw.adminUrl, 'POST', '/v1/apply', [script, spikeArrest('sa', '1000ps'), template('evil-t', [{ kind: 'JavaScript', name: 'evil' }]), decoy]);
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'invalid');
    assert.match(r.body.error.message, /nothing was applied/);
    const [detail, ...more] = detailsOf(r.body);
    assert.deepEqual(more, []);
    assert.equal(detail.path, '[3].spec.apimTemplateRule.name');
    assert.match(detail.message, /^ApimTemplate\/decoy names ApimTemplateRule\/org, which no template names, so it binds every template/);

    assert.deepEqual((await call(gw.adminUrl, 'GET', '/v1/manifests/ApimTemplate')).body.items, [], 'nothing was applied');
    stub.requests.length = 0;
    assert.equal(await chat(gw), 200);
    assert.equal(stub.requests.at(-1)?.req.headers['x-evil'], undefined, 'the denied JavaScript did not run');
  });

  test('a rule applied through the admin API is held the same way; one created with the templates naming it is theirs', async () => {
    const rule = doc('ApimTemplateRule', 'house', { denyList: [{ kind: 'CORS' }] });
    assert.equal((await call(gw.adminUrl, 'POST', '/v1/apply', [rule])).status, 200);
    const decoy = await call(gw.adminUrl, 'POST', '/v1/apply', [spikeArrest('decoy-sa', '1000ps'), template('decoy', [{ kind: 'SpikeArrest', name: 'decoy-sa' }], 'house')]);
    assert.equal(decoy.status, 400, JSON.stringify(decoy.body));
    assert.deepEqual(detailsOf(decoy.body).map((d) => d.path), ['[1].spec.apimTemplateRule.name']);
    // Applying the rule again beside the decoy does not create it: still refused.
    const again = await call(gw.adminUrl, 'POST', '/v1/apply', [rule, spikeArrest('decoy-sa', '1000ps'), template('decoy', [{ kind: 'SpikeArrest', name: 'decoy-sa' }], 'house')]);
    assert.equal(again.status, 400, JSON.stringify(again.body));

    const own = await call(gw.adminUrl, 'POST', '/v1/apply', [
      doc('ApimTemplateRule', 'team', { denyList: [{ kind: 'CORS' }] }),
      spikeArrest('team-sa', '1000ps'),
      template('team-t', [{ kind: 'SpikeArrest', name: 'team-sa' }], 'team'),
    ]);
    assert.equal(own.status, 200, JSON.stringify(own.body));
    const second = await call(gw.adminUrl, 'POST', '/v1/apply', [spikeArrest('team-sa2', '1000ps'), template('team-t2', [{ kind: 'SpikeArrest', name: 'team-sa2' }], 'team')]);
    assert.equal(second.status, 200, `a rule a template names already may be named by more: ${JSON.stringify(second.body)}`);
  });

  test('deleting the last template naming a rule widens it: allowed, and the templates it then binds answer to it', async () => {
    const applied = await call(gw.adminUrl, 'POST', '/v1/apply', [
      doc('ApimTemplateRule', 'strict', { denyList: [{ kind: 'Quota' }] }),
      spikeArrest('strict-sa', '1000ps'),
      template('strict-t', [{ kind: 'SpikeArrest', name: 'strict-sa' }], 'strict'),
      doc('Quota', 'plenty', { allow: 1000, interval: 1, timeUnit: 'minute' }),
      template('loose', [{ kind: 'Quota', name: 'plenty' }]),
    ]);
    assert.equal(applied.status, 200, JSON.stringify(applied.body));
    const deleted = await call(gw.adminUrl, 'DELETE', '/v1/manifests/ApimTemplate/strict-t');
    assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
    const next = await call(gw.adminUrl, 'POST', '/v1/apply', [spikeArrest('other', '1000ps')]);
    assert.equal(next.status, 200, JSON.stringify(next.body));
    assert.deepEqual(next.body.violations, ['ApimTemplate/loose breaks ApimTemplateRule/strict: Quota is on the denyList']);
    const renamed = await call(gw.adminUrl, 'POST', '/v1/apply', [template('strict-t', [{ kind: 'SpikeArrest', name: 'strict-sa' }], 'strict')]);
    assert.equal(renamed.status, 400, 'naming it again would narrow it back');
  });
});

describe('a gateway-wide template', () => {
  let gw: Gateway;
  before(async () => {
    gw = await start([
      manifest('SpikeArrest', 'everyone', { rate: '1pm' }),
      manifest('ApimTemplate', 'global', { templates: [{ policies: [{ kind: 'SpikeArrest', name: 'everyone' }] }] }),
    ]);
  });
  after(() => gw.close());

  test('the --config files\' template: an admin-API product naming it is refused, and it still runs for every request', async () => {
    assert.deepEqual([await chat(gw), await chat(gw)], [200, 429]);
    const r = await call(gw.adminUrl, 'POST', '/v1/apply', [product('decoy', 'global')]);
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.deepEqual(detailsOf(r.body).map((d) => d.path), ['[0].spec.templateRefs[0].name']);
    assert.match(detailsOf(r.body)[0].message, /^ApimTemplate\/global: no product names it, so it runs for every request; APIProduct\/decoy naming it .*the --config files declare it/);
    assert.equal((await call(gw.adminUrl, 'GET', '/v1/apiproducts/decoy')).status, 404);
    assert.equal(await chat(gw), 429);
  });

  test('one applied through the admin API: refused alike; created with its product, or deleted and applied again with it, it is theirs', async () => {
    const applied = await call(gw.adminUrl, 'POST', '/v1/apply', [spikeArrest('wide', '1000ps'), template('wide-t', [{ kind: 'SpikeArrest', name: 'wide' }])]);
    assert.equal(applied.status, 200, JSON.stringify(applied.body));
    const named = await call(gw.adminUrl, 'POST', '/v1/apply', [product('trial', 'wide-t')]);
    assert.equal(named.status, 400, JSON.stringify(named.body));
    assert.match(detailsOf(named.body)[0].message, /APIProduct\/trial naming it would make it run only for the requests entitled through that product; give APIProduct\/trial a template of its own/);

    const fresh = await call(gw.adminUrl, 'POST', '/v1/apply', [spikeArrest('gold-sa', '1000ps'), template('gold-t', [{ kind: 'SpikeArrest', name: 'gold-sa' }]), product('gold', 'gold-t')]);
    assert.equal(fresh.status, 200, JSON.stringify(fresh.body));
    assert.equal((await call(gw.adminUrl, 'DELETE', '/v1/manifests/ApimTemplate/wide-t')).status, 200);
    const together = await call(gw.adminUrl, 'POST', '/v1/apply', [template('wide-t', [{ kind: 'SpikeArrest', name: 'wide' }]), product('trial', 'wide-t')]);
    assert.equal(together.status, 200, JSON.stringify(together.body));
  });
});
