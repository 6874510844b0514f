// A product's grants on keys, on every backend: its holders found through credential_products (kept by triggers,
// migration 6) rather than by reading every key, and changed alone, each with its audit row, in one lock order.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Kysely, KyselyPlugin } from 'kysely';
import { silentLogger } from '../lib/logger.js';
import { ChangeFeed } from './change-feed.js';
import type { ApiProductGrant, IssuedCredential } from './credentials.js';
import { StoreView, type Database } from './database.js';
import { parseDatabaseUrl, type DialectName } from './database-url.js';
import { migrate } from './migrate.js';
import { MIGRATIONS } from './migrations/index.js';
import { openPostgres } from './postgres-connection.js';
import type { Tables } from './schema.js';
import { Session } from './session.js';
import { openSqlite } from './sqlite-connection.js';
import { DATABASE_BACKENDS, openForSuite, type TestDatabase } from './test-databases.js';

function storeOver(db: Kysely<Tables>, dialect: DialectName, target: TestDatabase, actor: string): StoreView {
  return new StoreView(new Session({ db, dialect, feed: new ChangeFeed(silentLogger), instanceId: actor, schema: target.schema ?? 'main' }, actor));
}

/** A view of `db` (actor `admin`) that counts the key rows its queries return: SQLite's reads hold the event loop. */
function counting(db: Database, target: TestDatabase): { view: StoreView; keysRead: () => number } {
  let keys = 0;
  const counter: KyselyPlugin = {
    transformQuery: ({ node }) => node,
    transformResult: async ({ result }) => {
      keys += result.rows.filter((row) => 'key_id' in row).length;
      return result;
    },
  };
  return { view: storeOver(db.kysely.withPlugin(counter), db.dialect, target, 'admin'), keysRead: () => keys };
}

/** credential_products, and the pairs the keys' grants name, each as sorted `product key` lines. */
async function indexAndGrants(db: Database): Promise<[string[], string[]]> {
  const indexed = await db.kysely.selectFrom('credential_products').select(['apiproduct', 'key_id']).execute();
  const granted = (await db.credentials.listAll()).flatMap((k) => [...new Set(k.apiProducts.map((g) => `${g.apiproduct} ${k.keyId}`))]);
  return [indexed.map((r) => `${r.apiproduct} ${r.key_id}`).sort(), granted.sort()];
}

const approved = (...names: string[]): ApiProductGrant[] => names.map((apiproduct) => ({ apiproduct, status: 'approved' }));
const pause = () => new Promise((resolve) => setTimeout(resolve, 200));

for (const backend of DATABASE_BACKENDS) {
  describe(backend.name, { skip: backend.skip }, () => {
    let target: TestDatabase;
    let db: Database;
    let seq = 0;
    const unique = (prefix: string) => `${prefix}-${++seq}-${Date.now().toString(36)}`;
    const auditOf = async (keyId: string) => (await db.audit.list({ resourceType: 'credential', resourceName: keyId })).items;
    // Writers race only on PostgreSQL: SQLite serialises them, so the race tests below exist there alone.
    const racing = backend.name === 'postgres';

    openForSuite(backend, (opened, created) => {
      db = opened;
      target = created;
    });

    test('deleting a product changes its holders alone, each with its audit row, and reads no other key', async () => {
      const [doomed, kept] = [unique('doomed'), unique('kept')];
      for (const name of [doomed, kept]) await db.products.create({ name });
      const dev = await db.developers.create({ email: `${unique('holders')}@example.com` });
      const apps = [await db.apps.create(dev.id, { name: 'one' }), await db.apps.create(dev.id, { name: 'two' })];
      const holders = [
        await db.credentials.issue({ appId: apps[0].id, apiProducts: [...approved(kept), { apiproduct: doomed, status: 'pending' }] }),
        await db.credentials.issue({ appId: apps[1].id, apiProducts: approved(doomed) }),
      ];
      const others: IssuedCredential[] = [];
      for (let i = 0; i < 20; i++) others.push(await db.credentials.issue({ appId: apps[i % 2].id, apiProducts: i % 3 ? approved(kept) : [] }));

      const { view, keysRead } = counting(db, target);
      await view.products.delete(doomed);
      // Before: every key was read and its grants decoded, for each product created or deleted.
      assert.equal(keysRead(), holders.length);

      assert.deepEqual((await db.credentials.get(holders[0].credential.keyId)).apiProducts, approved(kept));
      assert.deepEqual((await db.credentials.get(holders[1].credential.keyId)).apiProducts, []);
      for (const { credential } of holders) {
        const issued = { appId: credential.appId, apiProducts: credential.apiProducts.map((g) => g.apiproduct), status: 'approved', imported: false };
        assert.deepEqual(
          (await auditOf(credential.keyId)).map((a) => [a.action, a.actor, a.detail]),
          [
            ['update', 'admin', { removedApiProduct: doomed, reason: 'the product was deleted' }],
            ['create', 'system', issued],
          ],
        );
      }
      for (const { credential } of others) {
        assert.deepEqual(await db.credentials.get(credential.keyId), credential);
        assert.equal((await auditOf(credential.keyId)).length, 1, 'only its issue');
      }
      const [deleted] = (await db.audit.list({ resourceType: 'apiproduct', resourceName: doomed })).items;
      assert.deepEqual([deleted.action, deleted.detail], ['delete', { grantsRemovedFromKeys: 2 }]);
    });

    test('creating a product reads no key, and drops the grants a file-owned product of its name left', async () => {
      const name = unique('refiled');
      await db.products.apply({ name, owner: 'file' });
      const dev = await db.developers.create({ email: `${unique('refiled')}@example.com` });
      const app = await db.apps.create(dev.id, { name: 'app' });
      const { credential } = await db.credentials.issue({ appId: app.id, apiProducts: approved(name) });
      await db.products.delete(name, { keepGrants: true });

      const { view, keysRead } = counting(db, target);
      await view.products.create({ name: unique('fresh') });
      assert.equal(keysRead(), 0);
      await view.products.create({ name });
      assert.deepEqual((await db.credentials.get(credential.keyId)).apiProducts, []);
      assert.deepEqual((await auditOf(credential.keyId))[0].detail, { removedApiProduct: name, reason: 'a new product was created under its name' });
    });

    test('credential_products follows every change to keys and their grants', async () => {
      const [a, b, c] = [unique('a'), unique('b'), unique('c')];
      for (const name of [a, b, c]) await db.products.create({ name });
      const dev = await db.developers.create({ email: `${unique('index')}@example.com` });
      const [one, two] = [await db.apps.create(dev.id, { name: 'one' }), await db.apps.create(dev.id, { name: 'two' })];
      const first = await db.credentials.issue({ appId: one.id, apiProducts: approved(a, b) });
      await db.credentials.issue({ appId: one.id, apiProducts: [] });
      const third = await db.credentials.issue({ appId: two.id, apiProducts: approved(b, c) });
      const steps: [string, () => Promise<unknown>][] = [
        ['issue', async () => {}],
        ['a re-grant', () => db.credentials.regrantApp(one.id, approved(c, a))],
        ['a grant revoked', () => db.credentials.setProductStatus(first.credential.keyId, c, 'revoked')],
        ['a product delete', () => db.products.delete(b)],
        ['a key delete', () => db.credentials.delete(third.credential.keyId)],
        ['an app delete', () => db.apps.delete(one.id)],
        ['a developer delete', () => db.developers.delete(dev.email)],
      ];
      for (const [what, step] of steps) {
        await step();
        const [indexed, granted] = await indexAndGrants(db);
        assert.deepEqual(indexed, granted, `after ${what}`);
      }
    });

    test("a database of the previous release: its keys' grants are found after the upgrade", async () => {
      const old = await backend.create();
      try {
        const parsed = parseDatabaseUrl(old.url);
        const conn = parsed.dialect === 'sqlite' ? openSqlite(parsed.file) : openPostgres({ url: parsed.url, schema: old.schema }, silentLogger);
        let keyId: string;
        try {
          await migrate(conn, parsed.dialect, old.schema, MIGRATIONS.filter((m) => m.id < 6));
          const store = storeOver(conn, parsed.dialect, old, 'system');
          // A file's product: one the admin API creates drops stale grants, through the table this schema lacks.
          await store.products.apply({ name: 'legacy', owner: 'file' });
          const dev = await store.developers.create({ email: 'legacy@example.com' });
          const app = await store.apps.create(dev.id, { name: 'app' });
          keyId = (await store.credentials.issue({ appId: app.id, apiProducts: approved('legacy', 'legacy') })).credential.keyId;
        } finally {
          await conn.destroy();
        }
        const upgraded = await old.open({ listen: false });
        try {
          const [indexed, granted] = await indexAndGrants(upgraded);
          assert.deepEqual(indexed, granted);
          await upgraded.products.delete('legacy');
          assert.deepEqual((await upgraded.credentials.get(keyId)).apiProducts, []);
        } finally {
          await upgraded.close();
        }
      } finally {
        await old.dispose();
      }
    });

    if (racing) test('a product delete and a re-grant of an app holding it, meeting on its keys, both commit', async () => {
      const product = unique('contended');
      await db.products.create({ name: product });
      const dev = await db.developers.create({ email: `${unique('contended')}@example.com` });
      const app = await db.apps.create(dev.id, { name: 'app' });
      const older = await db.credentials.issue({ appId: app.id, apiProducts: approved(product) });
      const newer = await db.credentials.issue({ appId: app.id, apiProducts: approved(product) });
      // Updated, the older key's row comes after the newer one's in a scan (how the delete found holders before).
      await db.credentials.setProductStatus(older.credential.keyId, product, 'pending');
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const holding = db.transaction(async (tx) => {
        await tx.credentials.setStatus(newer.credential.keyId, 'approved');
        await released;
      });
      await pause();
      const deleting = db.products.delete(product);
      await pause();
      const regranting = db.credentials.regrantApp(app.id, []);
      await pause();
      release();
      // Before: the delete, first to get the newer key, waited for the older, which the re-grant held: a deadlock.
      const outcomes = await Promise.allSettled([holding, deleting, regranting]);
      assert.deepEqual(outcomes.map((o) => (o.status === 'rejected' ? String(o.reason) : o.status)), ['fulfilled', 'fulfilled', 'fulfilled']);
      for (const key of [older, newer]) assert.deepEqual((await db.credentials.get(key.credential.keyId)).apiProducts, []);
    });

    if (racing) test('a key a re-grant took the product from while the delete waited is neither changed nor audited again', async () => {
      const product = unique('regranted');
      await db.products.create({ name: product });
      const dev = await db.developers.create({ email: `${unique('regranted')}@example.com` });
      const app = await db.apps.create(dev.id, { name: 'app' });
      const { credential } = await db.credentials.issue({ appId: app.id, apiProducts: approved(product) });
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const regranting = db.transaction(async (tx) => {
        await tx.credentials.regrantApp(app.id, []);
        await released;
      });
      await pause();
      const deleting = db.products.delete(product);
      await pause();
      release();
      await Promise.all([regranting, deleting]);
      assert.deepEqual((await auditOf(credential.keyId)).map((a) => a.detail.reason ?? a.action), ['update', 'create']);
      const [deleted] = (await db.audit.list({ resourceType: 'apiproduct', resourceName: product })).items;
      assert.deepEqual(deleted.detail, {});
    });
  });
}
