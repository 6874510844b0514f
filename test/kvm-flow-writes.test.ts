// KeyValueMapOperations puts on the data plane: the entry alone is written (no audit row; nothing at all when the value
// is unchanged; nothing but a fault into a map nobody declares) and, on PostgreSQL, read again by itself on the other
// replicas; no replica reloads its store or rebuilds its policies for it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import type { Manifest } from '../src/config/manifest.js';
import { silentLogger } from '../src/lib/logger.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../src/store/test-databases.js';
import { KEY_VALUE_MAP_OPERATIONS_FAULTS } from '../src/policy/index.js';
import { call, codeOf, createApp, until, untilKeyKnown, type IssuedApp } from './helpers/apim-admin.js';
import { manifest } from './helpers/manifests.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const POSTGRES = DATABASE_BACKENDS.find((b) => b.name === 'postgres')!;

/** Each request tells upstream (x-last) what the app's entry held, then, given an x-note, puts the note there. */
function manifests(stubUrl: string): Manifest[] {
  const key = 'last:{developer.app.id}';
  return [
    manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate' } }),
    manifest('InferencePool', 'stub', { endpoints: [stubUrl] }),
    manifest('InferenceModel', 'echo', { modelName: 'echo', poolRef: { name: 'stub' } }),
    manifest('APIProduct', 'gold', { displayName: 'Gold' }),
    manifest('APIOperationSet', 'gold-ops', { apiProductRefs: [{ name: 'gold' }], llmOperations: { models: ['echo'] } }),
    manifest('KeyValueMap', 'seen', {}),
    manifest('KeyValueMapOperations', 'recall', { mapIdentifier: 'seen', get: [{ assignTo: 'kvm.last', key, defaultValue: 'none' }] }),
    manifest('AssignMessage', 'tell', { set: { headers: [{ name: 'x-last', value: '{kvm.last}' }] } }),
    manifest('KeyValueMapOperations', 'remember', { mapIdentifier: 'seen', put: [{ key, value: '{request.header.x-note}' }] }),
    // No KeyValueMap declares `notebook`: the admin API makes (and deletes) it.
    manifest('KeyValueMapOperations', 'jot', { mapIdentifier: 'notebook', put: [{ key, value: '{request.header.x-jot}' }] }),
    manifest('ApimTemplate', 'notes', {
      templates: [
        { policies: [{ kind: 'KeyValueMapOperations', name: 'recall' }, { kind: 'AssignMessage', name: 'tell' }] },
        { condition: "'x-note' in request.headers", policies: [{ kind: 'KeyValueMapOperations', name: 'remember' }] },
        { condition: "'x-jot' in request.headers", policies: [{ kind: 'KeyValueMapOperations', name: 'jot' }] },
      ],
    }),
  ];
}

let stub: Stub;

before(async () => {
  stub = await startStub();
});

after(async () => {
  await stub?.close();
});

/** What the entry held when this request came (x-last upstream); `note` is put afterwards. */
async function request(gw: Gateway, app: IssuedApp, note?: string): Promise<string> {
  const r = await call(gw.url, 'POST', '/v1/chat/completions', { model: 'echo', messages: [{ role: 'user', content: 'hi' }] }, { 'x-api-key': app.key, ...(note !== undefined && { 'x-note': note }) });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return String(stub.requests.at(-1)!.req.headers['x-last']);
}

describe('on one gateway (SQLite)', () => {
  let gw: Gateway;
  let app: IssuedApp;

  before(async () => {
    gw = await startGateway({ configPaths: [], manifests: manifests(stub.url), ...LOOPBACK, logger: silentLogger });
    app = await createApp(gw.adminUrl, ['gold'], 'notes');
    await untilKeyKnown(gw.url, app.key);
    await gw.apim.settled();
  });

  after(async () => {
    await gw?.close();
  });

  test('puts show at once on this replica, without a reload, a rebuild of the policies or audit rows', async () => {
    const engine = gw.apim.engine;
    assert.ok(engine);
    const seen: string[] = [];
    for (const note of ['a', 'b', 'c', 'd']) seen.push(await request(gw, app, note));
    assert.deepEqual(seen, ['none', 'a', 'b', 'c']);
    await gw.apim.settled();
    assert.equal(gw.apim.engine, engine, 'the policies were not rebuilt');
    assert.equal((await gw.apim.db.kvm.get('environment', 'seen', `last:${app.appId}`))?.value, 'd');
    const audit = await call(gw.adminUrl, 'GET', '/v1/audit?resourceType=kvm');
    assert.deepEqual(audit.body.items, [], 'data written by flows is not audited as configuration changes are');
  });

  test('a put of the value the entry holds writes nothing', async () => {
    await request(gw, app, 'same');
    const first = await gw.apim.db.kvm.get('environment', 'seen', `last:${app.appId}`);
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(await request(gw, app, 'same'), 'same');
    assert.equal((await gw.apim.db.kvm.get('environment', 'seen', `last:${app.appId}`))?.updatedAt, first?.updatedAt);
  });

  test('an admin change of an entry shows once answered, without a rebuild of the policies', async () => {
    const engine = gw.apim.engine;
    const put = await call(gw.adminUrl, 'PUT', `/v1/keyvaluemaps/seen/entries/${encodeURIComponent(`last:${app.appId}`)}`, { value: 'from-admin' });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.equal(await request(gw, app), 'from-admin');
    assert.equal(gw.apim.engine, engine);
  });

  test('a put into a map nobody declares faults and stores nothing: before the admin API makes it, and once it deletes it', async () => {
    const jot = (note: string) => call(gw.url, 'POST', '/v1/chat/completions', { model: 'echo', messages: [{ role: 'user', content: 'hi' }] }, { 'x-api-key': app.key, 'x-jot': note });
    const notebook = async () => (await gw.apim.db.kvm.listAll()).filter((e) => e.mapName === 'notebook').map((e) => e.value);
    // Before: stored (from request data, of any size), where the admin API could neither list nor delete it.
    const refused = await jot('before');
    assert.equal(refused.status, 500, JSON.stringify(refused.body));
    assert.equal(codeOf(refused), KEY_VALUE_MAP_OPERATIONS_FAULTS.setVariableFailed);
    assert.match(refused.body.error.message, /no key-value map named "notebook" is declared/);
    assert.deepEqual(await notebook(), []);
    assert.equal((await call(gw.adminUrl, 'POST', '/v1/keyvaluemaps', { name: 'notebook' })).status, 201);
    assert.equal((await jot('while')).status, 200);
    assert.deepEqual((await call(gw.adminUrl, 'GET', '/v1/keyvaluemaps/notebook/entries')).body.items, [{ name: `last:${app.appId}`, value: 'while' }]);
    assert.equal((await call(gw.adminUrl, 'DELETE', '/v1/keyvaluemaps/notebook')).status, 200);
    assert.equal((await jot('after')).status, 500);
    assert.deepEqual(await notebook(), []);
  });
});

describe('on two replicas sharing PostgreSQL', { skip: POSTGRES.skip }, () => {
  let db: TestDatabase;
  let a: Gateway;
  let b: Gateway;
  let app: IssuedApp;
  const dirs: string[] = [];

  const start = (target: TestDatabase) => {
    // A database that is not in memory gets usage records, whose spool directory is one pipeline's alone.
    const analyticsDir = mkdtempSync(join(tmpdir(), 'tollgate-kvm-writes-'));
    dirs.push(analyticsDir);
    return startGateway({ configPaths: [], manifests: manifests(stub.url), ...LOOPBACK, logger: silentLogger, db: target.url, dbSchema: target.schema, analyticsDir });
  };

  before(async () => {
    db = await POSTGRES.create();
    a = await start(db);
    b = await start(db);
    app = await createApp(a.adminUrl, ['gold'], 'notes');
    await untilKeyKnown(b.url, app.key);
    await Promise.all([a.apim.settled(), b.apim.settled()]);
  });

  after(async () => {
    await b?.close();
    await a?.close();
    await db?.dispose();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  test('a put on one replica is read on the other, and neither rebuilds its policies for it', async () => {
    const engines = [a.apim.engine, b.apim.engine];
    assert.equal(await request(a, app, 'from-a'), 'none');
    await until(() => request(b, app), (last) => last === 'from-a', 5000, 'the put seen on the other replica');
    assert.equal(await request(b, app, 'from-b'), 'from-a');
    await until(() => request(a, app), (last) => last === 'from-b', 5000, 'and back');
    await Promise.all([a.apim.settled(), b.apim.settled()]);
    assert.deepEqual([a.apim.engine, b.apim.engine], engines, 'neither replica rebuilt its policies');
  });
});
