// Without an APIMExtensionPolicy API management is off and no policy runs, yet what is applied meanwhile runs once one
// is. Templates and rules were not checked then: a misspelt rule kind, a template naming a missing policy, a condition
// that is not CEL were accepted, and surfaced at the later apply of the extension policy, pointing at no document.
// They are refused by the apply (or the load of the files) that brings them, naming its document.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../src/config/manifest.js';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { silentLogger } from '../src/lib/logger.js';
import { call } from './helpers/apim-admin.js';
import { poolAndModelYaml } from './helpers/manifests.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const doc = (kind: string, name: string, spec: unknown) => ({ apiVersion: 'apim.googleapis.com/v1', kind, metadata: { name }, spec });
const extension = doc('APIMExtensionPolicy', 'ext', { targetRef: { name: 'tollgate' } });
const spikeArrest = doc('SpikeArrest', 'sa', { rate: '1000ps' });
const template = (policy: string, condition?: string) => doc('ApimTemplate', 't', { templates: [{ ...(condition && { condition }), policies: [{ kind: 'SpikeArrest', name: policy }] }] });

let stub: Stub;
before(async () => {
  stub = await startStub();
});
after(() => stub.close());

function configDir(apim: unknown[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-apim-off-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'models.yaml'), poolAndModelYaml(stub.url));
  writeApim(dir, apim);
  return dir;
}

const writeApim = (dir: string, apim: unknown[]) => writeFileSync(join(dir, 'apim.yaml'), apim.map((d) => JSON.stringify(d)).join('\n---\n'));

const start = (dir: string) => startGateway({ configPaths: [dir], ...LOOPBACK, db: `sqlite:${join(dir, 'tollgate.db')}`, analyticsDir: join(dir, 'analytics'), logger: silentLogger });

async function chat(gw: Gateway): Promise<number> {
  const r = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }) });
  await r.arrayBuffer();
  return r.status;
}

describe('through the admin API, API management off', () => {
  let gw: Gateway;
  before(async () => {
    gw = await start(configDir([]));
  });
  after(() => gw.close());

  for (const [what, docs, path, message] of [
    ['a rule naming a policy kind that does not exist', [doc('ApimTemplateRule', 'r', { denyList: [{ kind: 'JavaScript' }, { kind: 'Javascript' }] })], /^\[0\]/, /spec.denyList\[1\].kind: unknown policy kind "Javascript"/],
    ['a template naming a policy that does not exist', [spikeArrest, template('missing')], /^\[1\]/, /spec.templates\[0\].policies\[0\].name: no SpikeArrest named "missing"/],
    ['a condition that is not CEL', [spikeArrest, template('sa', 'request.path +')], /^\[1\]/, /spec.templates\[0\].condition: not a CEL expression/],
  ] as const) {
    test(`${what} is refused by its apply, naming the document; nothing is stored`, async () => {
      const r = await call(gw.adminUrl, 'POST', '/v1/apply', docs);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      const details: { path: string; message: string }[] = r.body.error.details;
      assert.ok(details.some((d) => path.test(d.path) && message.test(`${d.path}: ${d.message}`)), JSON.stringify(details));
      for (const d of docs) assert.equal((await call(gw.adminUrl, 'GET', `/v1/manifests/${d.kind}/${d.metadata.name}`)).status, 404);
    });
  }

  test('what builds is applied; deleting a policy a template names is refused, as with API management on', async () => {
    const applied = await call(gw.adminUrl, 'POST', '/v1/apply', [spikeArrest, template('sa')]);
    assert.equal(applied.status, 200, JSON.stringify(applied.body));
    const deleted = await call(gw.adminUrl, 'DELETE', '/v1/manifests/SpikeArrest/sa');
    assert.equal(deleted.status, 400, JSON.stringify(deleted.body));
    assert.match(JSON.stringify(deleted.body), /no SpikeArrest named \\"sa\\"/);
    // And the extension policy applied later builds on what is there.
    assert.equal((await call(gw.adminUrl, 'POST', '/v1/apply', [extension])).status, 200);
    assert.equal(await chat(gw), 200);
  });
});

test('in the --config files without an extension policy: the start fails and a reload is refused', async () => {
  const broken = [spikeArrest, template('missing')];
  const dir = configDir(broken);
  await assert.rejects(start(dir), (err) => err instanceof ConfigError && err.problems.some((p) => /apim\.yaml document 1 \(ApimTemplate\/t\): .*no SpikeArrest named "missing"/.test(p)));

  writeApim(dir, []);
  const gw = await start(dir);
  try {
    writeApim(dir, broken);
    assert.equal(await gw.reload(), false);
    assert.equal(await chat(gw), 200);
  } finally {
    await gw.close();
  }
});

test('a store holding such objects from before (API management off) still starts and serves', async () => {
  const dir = configDir([]);
  const first = await start(dir);
  // As an earlier version accepted them: straight into the store.
  await first.apim.db.manifests.apply({ kind: 'ApimTemplate', name: 't', apiVersion: 'apim.googleapis.com/v1', spec: { templates: [{ policies: [{ kind: 'SpikeArrest', name: 'missing' }] }] } });
  await first.close();
  const gw = await start(dir);
  try {
    assert.equal(await chat(gw), 200);
    assert.equal((await call(gw.adminUrl, 'GET', '/readyz')).status, 200);
  } finally {
    await gw.close();
  }
});
