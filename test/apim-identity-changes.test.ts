// A change of keys, apps or developers alone reaches the data plane by reading those apps' keys again, on the replica
// that made it and (PostgreSQL) on the others, without reloading the whole store: every kind of change is checked
// through the data plane while no replica loads a snapshot.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { encodeJson } from '../src/store/codec.js';
import { generateKeyId, hashKey, randomBase62 } from '../src/store/keys.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../src/store/test-databases.js';
import { codeOf, createApp, quotaReport, until, untilKeyKnown, type IssuedApp } from './helpers/apim-admin.js';
import { apiKeyManifests, poolAndModel, settings } from './helpers/manifests.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const MANIFESTS = [
  ...poolAndModel(['http://127.0.0.1:9']),
  settings({ analytics: { enabled: false } }),
  ...apiKeyManifests('p', { quota: { limit: 1000, interval: 1, timeUnit: 'minute' } }),
];

const NOT_APPROVED = 'oauth.v2.ApiKeyNotApproved';
const APP_NOT_APPROVED = 'keymanagement.service.invalid_client-app_not_approved';
const UNKNOWN = 'oauth.v2.InvalidApiKey';

for (const backend of DATABASE_BACKENDS) {
  describe(`identity changes on ${backend.name}`, { skip: backend.skip }, () => {
    let db: TestDatabase;
    let replicas: Gateway[] = [];
    let app: IssuedApp;
    let bystander: IssuedApp;
    const snapshotLoads: number[] = [];

    before(async () => {
      db = await backend.create();
      // SQLite has no change feed between processes: one gateway there; PostgreSQL tells the second through NOTIFY.
      for (let i = 0; i < (backend.name === 'postgres' ? 2 : 1); i++) {
        replicas.push(await startGateway({ configPaths: [], manifests: MANIFESTS, ...LOOPBACK, db: db.url, dbSchema: db.schema }));
      }
      app = await createApp(replicas[0].adminUrl, ['p'], 'changed');
      bystander = await createApp(replicas[0].adminUrl, ['p'], 'bystander');
      for (const gw of replicas) for (const a of [app, bystander]) await untilKeyKnown(gw.url, a.key);
      replicas.forEach((gw, i) => {
        snapshotLoads[i] = 0;
        const load = gw.apim.db.loadSnapshot.bind(gw.apim.db);
        gw.apim.db.loadSnapshot = () => {
          snapshotLoads[i]++;
          return load();
        };
      });
    });
    after(async () => {
      for (const gw of replicas) await gw.close();
      replicas = [];
      await db?.dispose();
    });

    /** Every replica answers `key` with `code` (undefined: accepted) within 2 s. */
    async function everywhere(key: string, code: string | undefined, what: string): Promise<void> {
      for (const gw of replicas) await until(() => quotaReport(gw.url, key), (a) => (code === undefined ? a.status === 200 : codeOf(a) === code), 2000, what);
    }

    test('keys, apps and developers changed one by one, each seen by every replica without a whole reload', async () => {
      const store = replicas[0].apim.db;
      const developer = (await store.apps.get(app.appId)).developerId;
      await store.credentials.setStatus(app.keyId, 'revoked');
      await everywhere(app.key, NOT_APPROVED, 'key revoked');
      await store.credentials.setStatus(app.keyId, 'approved');
      await everywhere(app.key, undefined, 'key approved again');
      await store.apps.setStatus(app.appId, 'revoked');
      await everywhere(app.key, APP_NOT_APPROVED, 'app revoked');
      await store.apps.setStatus(app.appId, 'approved');
      await everywhere(app.key, undefined, 'app approved again');
      await store.developers.setStatus(developer, 'inactive');
      await everywhere(app.key, APP_NOT_APPROVED, 'developer inactive');
      await store.developers.setStatus(developer, 'active');
      await everywhere(app.key, undefined, 'developer active again');
      const second = await store.credentials.issue({ appId: app.appId, apiProducts: [{ apiproduct: 'p', status: 'approved' }] });
      await everywhere(second.consumerKey, undefined, 'second key issued');
      await store.credentials.delete(app.keyId);
      await everywhere(app.key, UNKNOWN, 'first key deleted');
      await everywhere(second.consumerKey, undefined, 'second key kept');
      await store.developers.delete(developer);
      await everywhere(second.consumerKey, UNKNOWN, 'developer deleted with its app and keys');
      await everywhere(bystander.key, undefined, "another app's key untouched");
      assert.deepEqual(snapshotLoads, replicas.map(() => 0));
    });

    test("a key issued into, revoked in and deleted from an app of 3,000 keys is read alone on every replica, the app's other keys kept", async () => {
      const crowded = await createApp(replicas[0].adminUrl, ['p'], 'crowded');
      // Written straight into the table (then every replica reloaded): issued one by one, before key-level changes, the
      // 3,000 cost a read of the whole app each.
      const now = new Date().toISOString();
      const keys = Array.from({ length: 3000 }, () => `crowded-${randomBase62(24)}`);
      const rows = keys.map((k) => ({ key_id: generateKeyId(), app_id: crowded.appId, key_hash: hashKey(k), secret_hash: null, status: 'approved', api_products: encodeJson([{ apiproduct: 'p', status: 'approved' }]), issued_at: now, expires_at: null, created_at: now }));
      for (let i = 0; i < rows.length; i += 500) await replicas[0].apim.db.kysely.insertInto('credentials').values(rows.slice(i, i + 500)).execute();
      for (const gw of replicas) await gw.apim.refresh();
      await everywhere(keys[0], undefined, 'a crowded key loaded');

      /** Keys each replica read for a change: the rows this replica's transaction served, or a read after one. */
      const read: number[][] = replicas.map(() => []);
      const unhooks = replicas.map((gw, i) => {
        const load = gw.apim.db.loadIdentityRows.bind(gw.apim.db);
        gw.apim.db.loadIdentityRows = async (refs) => {
          const rows = await load(refs);
          read[i].push(rows.credentials.length);
          return rows;
        };
        return gw.apim.db.onChange((event) => {
          if (event.identityRows) read[i].push(event.identityRows.credentials.length);
        });
      });
      try {
        const store = replicas[0].apim.db;
        const issued = await store.credentials.issue({ appId: crowded.appId, apiProducts: [{ apiproduct: 'p', status: 'approved' }] });
        await everywhere(issued.consumerKey, undefined, 'key issued');
        await store.credentials.setStatus(issued.credential.keyId, 'revoked');
        await everywhere(issued.consumerKey, NOT_APPROVED, 'key revoked');
        await store.credentials.setProductStatus(issued.credential.keyId, 'p', 'approved');
        await store.credentials.delete(issued.credential.keyId);
        await everywhere(issued.consumerKey, UNKNOWN, 'key deleted');
        for (const k of [crowded.key, keys[0], keys[2999]]) await everywhere(k, undefined, 'the other keys of the app kept');
      } finally {
        for (const unhook of unhooks) unhook();
      }
      // This replica served its own changes from its transaction's rows, without reading them again; the others read
      // the key alone.
      assert.deepEqual(read[0], [1, 1, 1, 0]);
      for (const other of read.slice(1)) assert.ok(other.length > 0 && other.every((n) => n <= 1), `keys read per change: ${other.join(', ')}`);
      assert.deepEqual(snapshotLoads, replicas.map(() => 1));
    });
  });
}

describe("a replica's own change whose rows were read before another change was served", () => {
  let db: TestDatabase;
  let gw: Gateway;
  before(async () => {
    db = await DATABASE_BACKENDS[0].create();
    gw = await startGateway({ configPaths: [], manifests: MANIFESTS, ...LOOPBACK, db: db.url });
  });
  after(async () => {
    await gw?.close();
    await db?.dispose();
  });

  test('does not leave a key revoked meanwhile working: its rows are served, then read again', async () => {
    const app = await createApp(gw.adminUrl, ['p'], 'overtaken');
    await untilKeyKnown(gw.url, app.key);
    const store = gw.apim.db;
    // On PostgreSQL an app-level change T1 reads its app's keys in its transaction; a revoke T2 of one of them locks
    // the key alone, commits and is served first; then T1's COMMIT is answered and its event published with the rows
    // it read before T2. Emulated here in that order: T1's rows, T2 for real, T1's event.
    const refs = { appIds: [app.appId], developerIds: [] };
    const t1Rows = await store.loadIdentityRows(refs);
    await store.credentials.setStatus(app.keyId, 'revoked');
    await until(() => quotaReport(gw.url, app.key), (a) => codeOf(a) === NOT_APPROVED, 5000, 'the revocation served');
    store['session'].core.feed.publish({ resourceTypes: ['app'], identity: refs, identityRows: t1Rows, origin: 'local' });
    // Before: T1's rows stayed in force, the revoked key accepted until some later change or a whole reload.
    await until(() => quotaReport(gw.url, app.key), (a) => codeOf(a) === NOT_APPROVED, 5000, 'the revoked key refused again');
    await gw.apim.settled();
    assert.equal(codeOf(await quotaReport(gw.url, app.key)), NOT_APPROVED);
  });
});
