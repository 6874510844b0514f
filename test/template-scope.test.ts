// A product's own template (templateRefs) runs only for that product's requests; a template no product names runs
// for every request. Taking the product away while its template stayed turned a trial's one-request quota onto every
// tenant of the gateway, on every replica, without a word: such a change is refused, through the admin API and in a
// reload of the --config files alike, and the template goes together with its product.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { waitFor } from '../src/sim/testing.js';
import { call, createApp, type IssuedApp } from './helpers/apim-admin.js';
import { poolAndModelYaml } from './helpers/manifests.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

type Doc = { kind: string; metadata: { name: string }; spec: unknown };
const V = 'apim.googleapis.com/v1';
const extension: Doc = { kind: 'APIMExtensionPolicy', metadata: { name: 'ext' }, spec: { defaultSecurityEnabled: true, targetRef: { name: 'tollgate' } } };
/** A product with its operation set; `templates` its own templates. */
const product = (name: string, ...templates: string[]): Doc[] => [
  { kind: 'APIProduct', metadata: { name }, spec: { displayName: name, ...(templates.length > 0 && { templateRefs: templates.map((t) => ({ name: t })) }) } },
  { kind: 'APIOperationSet', metadata: { name: `${name}-ops` }, spec: { apiProductRefs: [{ name }] } },
];
/** A template with a quota of one request a minute per app. */
const oneRequestTemplate = (name: string): Doc[] => [
  { kind: 'Quota', metadata: { name: `${name}-quota` }, spec: { allow: 1, interval: 1, timeUnit: 'minute' } },
  { kind: 'ApimTemplate', metadata: { name }, spec: { templates: [{ policies: [{ kind: 'Quota', name: `${name}-quota` }] }] } },
];
const withVersion = (docs: Doc[]) => docs.map((d) => ({ apiVersion: V, ...d }));
const yaml = (docs: Doc[]) => withVersion(docs).map((d) => JSON.stringify(d)).join('\n---\n');

let stub: Stub;
before(async () => {
  stub = await startStub();
});
after(() => stub.close());

async function statuses(gw: Gateway, app: IssuedApp, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': app.key }, body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }] }) });
    await r.arrayBuffer();
    out.push(r.status);
  }
  return out;
}

describe('through the admin API', () => {
  let dir: string;
  let gw: Gateway;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-template-scope-'));
    writeFileSync(join(dir, 'models.yaml'), poolAndModelYaml(stub.url, 'm', 'model'));
    writeFileSync(join(dir, 'apim.yaml'), yaml([extension]));
    gw = await startGateway({ configPaths: [dir], ...LOOPBACK, logger: pino({ level: 'silent' }) });
  });
  after(async () => {
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("deleting a product, or dropping its templateRefs, while its template stays is refused; the other products' apps are not touched", async () => {
    const applied = await call(gw.adminUrl, 'POST', '/v1/apply', withVersion([...oneRequestTemplate('trial-t'), ...product('trial', 'trial-t'), ...product('cal')]));
    assert.equal(applied.status, 200, JSON.stringify(applied.body));
    const trialApp = await createApp(gw.adminUrl, ['trial'], 'trial');
    const calApp = await createApp(gw.adminUrl, ['cal'], 'cal');
    assert.deepEqual(await statuses(gw, trialApp, 2), [200, 429], 'the template runs for its product');
    assert.deepEqual(await statuses(gw, calApp, 3), [200, 200, 200], '...and only for it');

    const deleted = await call(gw.adminUrl, 'DELETE', '/v1/apiproducts/trial');
    assert.equal(deleted.status, 400, JSON.stringify(deleted.body));
    assert.match(JSON.stringify(deleted.body), /ApimTemplate\/trial-t: runs only for the requests of APIProduct\/trial/);
    const unnamed = await call(gw.adminUrl, 'POST', '/v1/apply', withVersion(product('trial')));
    assert.equal(unnamed.status, 400, JSON.stringify(unnamed.body));
    assert.equal((await call(gw.adminUrl, 'GET', '/v1/apiproducts/trial')).status, 200, 'the product is still there');
    assert.deepEqual(await statuses(gw, calApp, 3), [200, 200, 200]);

    // Together, in one delete: the product and its own template go; nobody else is limited by it.
    const both = await call(gw.adminUrl, 'POST', '/v1/delete', withVersion([...product('trial'), ...oneRequestTemplate('trial-t')]));
    assert.equal(both.status, 200, JSON.stringify(both.body));
    assert.equal((await call(gw.adminUrl, 'GET', '/v1/apiproducts/trial')).status, 404);
    const fresh = await createApp(gw.adminUrl, ['cal'], 'cal2');
    assert.deepEqual(await statuses(gw, fresh, 3), [200, 200, 200]);
  });

  test('deleting a template a product still names is refused, naming the product; deleted together with the product it goes', async () => {
    const applied = await call(gw.adminUrl, 'POST', '/v1/apply', withVersion([...oneRequestTemplate('beta-t'), ...product('beta', 'beta-t')]));
    assert.equal(applied.status, 200, JSON.stringify(applied.body));
    const betaApp = await createApp(gw.adminUrl, ['beta'], 'beta');

    for (const refused of [
      await call(gw.adminUrl, 'POST', '/v1/delete', withVersion(oneRequestTemplate('beta-t').filter((d) => d.kind === 'ApimTemplate'))),
      await call(gw.adminUrl, 'DELETE', '/v1/manifests/ApimTemplate/beta-t'),
    ]) {
      assert.equal(refused.status, 400, JSON.stringify(refused.body));
      const { error } = refused.body as { error: { code: string; message: string; details: { path: string; message: string }[] } };
      assert.equal(error.code, 'invalid');
      assert.match(error.message, /nothing was deleted/);
      assert.match(error.details.map((d) => d.message).join('\n'), /ApimTemplate\/beta-t: APIProduct\/beta would still name it in templateRefs/);
    }
    assert.equal((await call(gw.adminUrl, 'GET', '/v1/manifests/ApimTemplate/beta-t')).status, 200, 'the template is still there');
    assert.deepEqual(await statuses(gw, betaApp, 2), [200, 429], 'and runs for its product');

    const both = await call(gw.adminUrl, 'POST', '/v1/delete', withVersion([...product('beta'), ...oneRequestTemplate('beta-t')]));
    assert.equal(both.status, 200, JSON.stringify(both.body));
  });

  test('a product without templates of its own is deleted as before', async () => {
    assert.equal((await call(gw.adminUrl, 'POST', '/v1/apply', withVersion(product('plain')))).status, 200);
    const deleted = await call(gw.adminUrl, 'DELETE', '/v1/apiproducts/plain');
    assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
    assert.equal(deleted.body.name, 'plain');
    assert.equal((await call(gw.adminUrl, 'DELETE', '/v1/apiproducts/plain')).status, 404);
  });
});

test('a reload of the --config files that drops a product but keeps its template is refused; the last good state stays', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-template-scope-files-'));
  const logs: { msg?: string; problems?: string[] }[] = [];
  writeFileSync(join(dir, 'models.yaml'), poolAndModelYaml(stub.url, 'm', 'model'));
  writeFileSync(join(dir, 'apim.yaml'), yaml([extension, ...oneRequestTemplate('trial-t'), ...product('trial', 'trial-t'), ...product('cal')]));
  const gw = await startGateway({ configPaths: [dir], port: 0, adminPort: 0, host: '127.0.0.1', logger: pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) }) });
  after(async () => {
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const calApp = await createApp(gw.adminUrl, ['cal'], 'files-cal');
  writeFileSync(join(dir, 'apim.yaml'), yaml([extension, ...oneRequestTemplate('trial-t'), ...product('cal')]));
  const rejected = () => logs.find((l) => l.msg?.includes('configuration change rejected'));
  await waitFor(() => rejected() !== undefined, 5000, 'the reload refused', 20);
  assert.match(rejected()!.problems![0], /ApimTemplate\/trial-t: runs only for the requests of APIProduct\/trial/);
  assert.deepEqual(await statuses(gw, calApp, 3), [200, 200, 200]);

  // Without the template too, the reload applies.
  writeFileSync(join(dir, 'apim.yaml'), yaml([extension, ...product('cal')]));
  await waitFor(async () => (await call(gw.adminUrl, 'GET', '/v1/apiproducts/trial')).status === 404, 5000, 'the product gone', 20);
  assert.deepEqual(await statuses(gw, calApp, 3), [200, 200, 200]);
});

test('a restart with files that dropped a product but kept its template is refused too (the store remembers the product)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-template-scope-restart-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const start = () => startGateway({ configPaths: [dir], ...LOOPBACK, db: `sqlite:${join(dir, 'tollgate.db')}`, analyticsDir: join(dir, 'analytics'), logger: pino({ level: 'silent' }) });
  writeFileSync(join(dir, 'models.yaml'), poolAndModelYaml(stub.url, 'm', 'model'));
  writeFileSync(join(dir, 'apim.yaml'), yaml([extension, ...oneRequestTemplate('trial-t'), ...product('trial', 'trial-t'), ...product('cal')]));
  await (await start()).close();
  writeFileSync(join(dir, 'apim.yaml'), yaml([extension, ...oneRequestTemplate('trial-t'), ...product('cal')]));
  await assert.rejects(start(), /ApimTemplate\/trial-t: runs only for the requests of APIProduct\/trial/);
  // Without the template as well, it starts; and once the product is gone from the store, the template alone is a
  // gateway-wide one like any other.
  writeFileSync(join(dir, 'apim.yaml'), yaml([extension, ...product('cal')]));
  const gw = await start();
  await gw.close();
});
