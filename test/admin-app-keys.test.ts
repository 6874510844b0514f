// An app's whole set of keys through the admin API: more keys than a page holds, and app PUTs racing key changes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateApiKey, generateKeyId, hashKey, MAX_PAGE_SIZE, type App, type Database, type StoreView } from '../src/store/index.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../src/store/test-databases.js';
import { call, type ServedAdmin, serveApimAdmin } from './helpers/apim-admin.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long a racing transaction stays open, and how far into it the admin call starts. */
const HOLD_MS = 300;
const START_AFTER_MS = 100;

for (const backend of DATABASE_BACKENDS) {
  describe(`an app's keys through the admin API (${backend.name})`, { skip: backend.skip }, () => {
    let target: TestDatabase;
    let db: Database;
    let admin: ServedAdmin;
    let seq = 0;
    const unique = (prefix: string) => `${prefix}-${++seq}`;
    const api = (method: string, path: string, body?: unknown) => call(admin.url, method, path, body);

    before(async () => {
      target = await backend.create();
      db = await target.open();
      admin = await serveApimAdmin(db);
    });
    after(async () => {
      await admin?.close();
      await db?.close();
      await target?.dispose();
    });

    async function products(...approvalTypes: ('auto' | 'manual')[]): Promise<string[]> {
      const names = [];
      for (const approvalType of approvalTypes) names.push((await db.products.create({ name: unique('product'), approvalType })).name);
      return names;
    }

    async function app(): Promise<{ app: App; path: string }> {
      const developer = await db.developers.create({ email: `${unique('dev')}@example.com` });
      const created = await db.apps.create(developer.id, { name: 'app' });
      return { app: created, path: `/v1/developers/${developer.email}/apps/app` };
    }

    /** Runs `during` while a transaction that did `hold` stays open, then lets the transaction commit. */
    async function whileHeld<T>(hold: (tx: StoreView) => Promise<void>, during: () => Promise<T>): Promise<T> {
      const held = db.transaction(async (tx) => {
        await hold(tx);
        await sleep(HOLD_MS);
      });
      await sleep(START_AFTER_MS);
      const [result] = await Promise.all([during(), held]);
      return result;
    }

    const productsOf = async (keyId: string) => (await db.credentials.get(keyId)).apiProducts.map((g) => g.apiproduct);

    test('more keys than a page: the app lists every one, a new key inherits from every one, a PUT re-grants every one', async () => {
      const [old, recent] = await products('auto', 'auto');
      const { app: created, path } = await app();
      // A page's worth of keys in one statement: issued one by one, they take seconds on PostgreSQL.
      const at = new Date().toISOString();
      const grants = JSON.stringify([{ apiproduct: old, status: 'approved' }]);
      const rows = Array.from({ length: MAX_PAGE_SIZE }, () => ({ key_id: generateKeyId(), app_id: created.id, key_hash: hashKey(generateApiKey()), secret_hash: null, status: 'approved', api_products: grants, issued_at: at, expires_at: null, created_at: at }));
      await db.kysely.insertInto('credentials').values(rows).execute();
      await sleep(5); // issued after the others, so it sorts last, beyond the first page
      const newest = (await db.credentials.issue({ appId: created.id, apiProducts: [{ apiproduct: recent, status: 'approved' }] })).credential.keyId;

      // Before, each of these read one page of 1,000 keys: the newest key was missed.
      const inherited = await api('POST', `${path}/keys`, {});
      assert.equal(inherited.status, 201);
      assert.deepEqual(inherited.body.apiProducts.map((g: { apiproduct: string }) => g.apiproduct), [old, recent]);
      const read = await api('GET', path);
      assert.equal(read.body.credentials.length, MAX_PAGE_SIZE + 2);
      const put = await api('PUT', path, { apiProducts: [] });
      assert.equal(put.status, 200);
      assert.equal(put.body.credentials.length, MAX_PAGE_SIZE + 2);
      assert.ok(put.body.credentials.every((c: { apiProducts: unknown[] }) => c.apiProducts.length === 0));
      assert.deepEqual(await productsOf(newest), [], 'the newest key lost the removed product too');
    });

    test('a key\'s product approval committed while a PUT re-grants the app is kept', async () => {
      const [gold, basic] = await products('manual', 'auto');
      const { app: created, path } = await app();
      const { keyId } = (await db.credentials.issue({ appId: created.id, apiProducts: [{ apiproduct: gold, status: 'pending' }] })).credential;
      const put = await whileHeld(
        async (tx) => void (await tx.credentials.setProductStatus(keyId, gold, 'approved')),
        () => api('PUT', path, { apiProducts: [gold, basic] }),
      );
      assert.equal(put.status, 200);
      // Before, on PostgreSQL: the PUT merged from a copy read before the approval committed, and reset it to pending.
      assert.deepEqual((await db.credentials.get(keyId)).apiProducts, [
        { apiproduct: gold, status: 'approved' },
        { apiproduct: basic, status: 'approved' },
      ]);
    });

    test('a key issued while a PUT removes a product loses it too', async () => {
      const [gold, basic] = await products('auto', 'auto');
      const { app: created, path } = await app();
      await db.credentials.issue({ appId: created.id, apiProducts: [{ apiproduct: gold, status: 'approved' }] });
      let issued = '';
      const put = await whileHeld(
        async (tx) => void (issued = (await tx.credentials.issue({ appId: created.id, apiProducts: [{ apiproduct: gold, status: 'approved' }] })).credential.keyId),
        () => api('PUT', path, { apiProducts: [basic] }),
      );
      assert.equal(put.status, 200);
      // Before, on PostgreSQL: the PUT read the app's keys before the new one committed, which kept gold.
      assert.deepEqual(await productsOf(issued), [basic]);
      for (const key of await db.credentials.listAllForApp(created.id)) assert.deepEqual(key.apiProducts.map((g) => g.apiproduct), [basic]);
    });

    test('a key issued without a list while the app is re-granted gets the products it is left with', async () => {
      const [gold, basic] = await products('auto', 'auto');
      const { app: created, path } = await app();
      await db.credentials.issue({ appId: created.id, apiProducts: [{ apiproduct: gold, status: 'approved' }] });
      const issued = await whileHeld(
        async (tx) => {
          await tx.apps.lock(created.id);
          await tx.credentials.regrantApp(created.id, [{ apiproduct: basic, status: 'approved' }]);
        },
        () => api('POST', `${path}/keys`, {}),
      );
      assert.equal(issued.status, 201);
      // Before, on PostgreSQL: the products were read from the keys before the re-grant committed.
      assert.deepEqual(await productsOf(issued.body.keyId), [basic]);
    });
  });
}
