// A policy change (products, operation sets, manifests) is checked and followed by reading the policies alone: its cost
// is the policies', not the keys'. Every replica re-resolves the keys it holds against the new products without
// reading a key, app or developer, and a key revoked while a policy reload is under way is refused at once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { SnapshotIdentity } from '../src/apim/snapshot-identity.js';
import { Apps } from '../src/store/apps.js';
import { Credentials } from '../src/store/credentials.js';
import { Developers } from '../src/store/developers.js';
import { Kvm } from '../src/store/kvm.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../src/store/test-databases.js';
import { call, codeOf, createApp, quotaReport, until, untilKeyKnown, type IssuedApp } from './helpers/apim-admin.js';
import { apiKeyManifests, poolAndModel, settings } from './helpers/manifests.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const MANIFESTS = [...poolAndModel(['http://127.0.0.1:9']), settings({ analytics: { enabled: false } }), ...apiKeyManifests('p')];

const operationSet = (name: string) => ({ apiVersion: 'apim.googleapis.com/v1', kind: 'APIOperationSet', metadata: { name }, spec: { apiProductRefs: [{ name: 'p' }] } });
const product = (name: string) => ({ apiVersion: 'apim.googleapis.com/v1', kind: 'APIProduct', metadata: { name }, spec: { displayName: name } });

/** The whole-table reads of keys, apps, developers and entries, and the key views built from them, counted. */
function countIdentityReads(): { count: () => number; restore: () => void } {
  let reads = 0;
  const restores: (() => void)[] = [];
  const spy = (target: object, method: string) => {
    const original = (target as Record<string, (...args: unknown[]) => unknown>)[method];
    (target as Record<string, unknown>)[method] = function (this: unknown, ...args: unknown[]) {
      reads++;
      return original.apply(this, args);
    };
    restores.push(() => ((target as Record<string, unknown>)[method] = original));
  };
  for (const proto of [Credentials.prototype, Apps.prototype, Developers.prototype, Kvm.prototype]) spy(proto, 'listAll');
  for (const proto of [Credentials.prototype, Apps.prototype]) spy(proto, 'listOwned');
  spy(SnapshotIdentity, 'load');
  return { count: () => reads, restore: () => restores.forEach((r) => r()) };
}

for (const backend of DATABASE_BACKENDS) {
  describe(`policy changes on ${backend.name}`, { skip: backend.skip }, () => {
    let db: TestDatabase;
    let replicas: Gateway[] = [];
    let app: IssuedApp;

    before(async () => {
      db = await backend.create();
      // SQLite has no change feed between processes: one gateway there; PostgreSQL tells the second through NOTIFY.
      for (let i = 0; i < (backend.name === 'postgres' ? 2 : 1); i++) {
        replicas.push(await startGateway({ configPaths: [], manifests: MANIFESTS, ...LOOPBACK, db: db.url, dbSchema: db.schema }));
      }
      app = await createApp(replicas[0].adminUrl, ['p'], 'policy');
      for (const gw of replicas) await untilKeyKnown(gw.url, app.key);
    });
    after(async () => {
      for (const gw of replicas) await gw.close();
      replicas = [];
      await db?.dispose();
    });

    /** Every replica lists these operation sets for product `p` in `key`'s quota report, within 2 s. */
    async function everywhereSets(key: string, sets: string[], what: string): Promise<void> {
      for (const gw of replicas) {
        await until(() => quotaReport(gw.url, key), (a) => a.status === 200 && JSON.stringify(a.body.products[0].operationSets.map((s: { name: string }) => s.name)) === JSON.stringify(sets), 2000, what);
      }
    }

    test('dry runs, applies, product changes and deletes read no key, app, developer or entry, on any replica', async (t) => {
      await Promise.all(replicas.map((gw) => gw.apim.settled()));
      const reads = countIdentityReads();
      t.after(reads.restore);
      const admin = replicas[0].adminUrl;

      assert.equal((await call(admin, 'POST', '/v1/apply?dryRun=true', [product('dry'), operationSet('dry-ops')])).status, 200);
      assert.equal((await call(admin, 'POST', '/v1/apply', [operationSet('p-more')])).status, 200);
      await everywhereSets(app.key, ['p-more', 'p-ops'], 'an operation set added to p, on every replica');
      assert.equal((await call(admin, 'POST', '/v1/apiproducts', { name: 'x', displayName: 'x' })).status, 201);
      assert.equal((await call(admin, 'PUT', '/v1/apiproducts/x', { displayName: 'X' })).status, 200);
      assert.equal((await call(admin, 'POST', '/v1/delete', [operationSet('p-more')])).status, 200);
      await everywhereSets(app.key, ['p-ops'], 'the operation set deleted, on every replica');
      assert.equal((await call(admin, 'DELETE', '/v1/apiproducts/x')).status, 200);
      await Promise.all(replicas.map((gw) => gw.apim.settled()));

      assert.equal(reads.count(), 0);
    });

    // A policy change reloads the policies alone; a change that cannot say which keys it touched (or a reconnect) reloads
    // everything, whose read here predates the revoke: the revoke is served again over it.
    const reloads = {
      'its policies': async (key: string) => {
        assert.equal((await call(replicas[0].adminUrl, 'POST', '/v1/apply', [operationSet('p-late')])).status, 200);
        await everywhereSets(key, ['p-late', 'p-ops'], 'the operation set added, on every replica');
      },
      'the whole store': () => Promise.all(replicas.map((gw) => gw.apim.refresh())),
    };
    for (const [what, reload] of Object.entries(reloads)) {
      test(`a key revoked while every replica reloads ${what} is refused by each before the reloads end, and after`, async (t) => {
        const revoked = await createApp(replicas[0].adminUrl, ['p'], 'revoked');
        const other = await createApp(replicas[0].adminUrl, ['p'], 'other');
        for (const gw of replicas) for (const a of [revoked, other]) await untilKeyKnown(gw.url, a.key);
        await Promise.all(replicas.map((gw) => gw.apim.settled()));
        // Each replica's reload reads the store, then waits here until released: as slow as the test needs.
        let release!: () => void;
        const released = new Promise<void>((resolve) => (release = resolve));
        let held = 0;
        for (const gw of replicas) {
          for (const method of ['loadPolicyRows', 'loadSnapshot'] as const) {
            const load = gw.apim.db[method].bind(gw.apim.db) as () => Promise<unknown>;
            (gw.apim.db as unknown as Record<string, unknown>)[method] = async () => {
              const read = await load();
              held++;
              await released;
              return read;
            };
            t.after(() => delete (gw.apim.db as unknown as Record<string, unknown>)[method]);
          }
        }
        const reloaded = reload(other.key);
        t.after(async () => {
          release();
          await reloaded.catch(() => {});
        });

        await until(async () => held, (n) => n === replicas.length, 5000, 'every replica reloading');
        await replicas[0].apim.db.credentials.setStatus(revoked.keyId, 'revoked');
        for (const gw of replicas) await until(() => quotaReport(gw.url, revoked.key), (a) => codeOf(a) === 'oauth.v2.ApiKeyNotApproved', 1000, `revoked on ${gw.url}`);
        assert.equal(held, replicas.length, 'no reload ended');

        release();
        await reloaded;
        await Promise.all(replicas.map((gw) => gw.apim.settled()));
        for (const gw of replicas) assert.equal(codeOf(await quotaReport(gw.url, revoked.key)), 'oauth.v2.ApiKeyNotApproved', 'the reload did not bring the key back');
        for (const gw of replicas) assert.equal((await quotaReport(gw.url, other.key)).status, 200);
      });
    }
  });
}
