// An app's whole set of keys through the admin API: more keys than a page holds, app PUTs racing key changes, and keys
// imported as a migration carries them (status, per-product status, dates, retries, Apigee Edge's path).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateApiKey, generateKeyId, hashKey, MAX_PAGE_SIZE, type App, type Database, type StoreView } from '../src/store/index.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../src/store/test-databases.js';
import { type Answer, call, type ServedAdmin, serveApimAdmin } from './helpers/apim-admin.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const paths = (answer: Answer): string[] => (answer.body.error.details ?? []).map((d: { path: string }) => d.path);

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

    describe('importing existing keys', () => {
      let seqKey = 0;
      const legacy = () => `legacy-key-${process.pid}-${++seqKey}-0123456789`;

      test('a key revoked at its source is imported revoked, in the insert, and the audit log says so', async () => {
        const [p] = await products('auto');
        const { path } = await app();
        const r = await api('POST', `${path}/keys`, { consumerKey: legacy(), apiProducts: [p], status: 'revoked' });
        assert.equal(r.status, 201, JSON.stringify(r.body));
        assert.equal(r.body.status, 'revoked');
        assert.equal((await db.credentials.get(r.body.keyId)).status, 'revoked');
        const audit = await api('GET', `/v1/audit?resourceType=credential&resourceName=${r.body.keyId}`);
        // One row: revoked as it was created, not created approved and revoked after.
        assert.deepEqual(audit.body.items.map((e: { action: string; detail: { status: string; imported: boolean } }) => [e.action, e.detail.status, e.detail.imported]), [['create', 'revoked', true]]);
        for (const status of ['pending', 'approved']) assert.equal((await api('POST', `${path}/keys`, { consumerKey: legacy(), status })).body.status, status);
        assert.deepEqual(paths(await api('POST', `${path}/keys`, { consumerKey: legacy(), status: 'live' })), ['status']);
        // A generated key starts approved: a status is the source's, so only an import has one.
        assert.deepEqual(paths(await api('POST', `${path}/keys`, { status: 'revoked' })), ['status']);
      });

      test('products in Apigee\'s export shape keep their status; names keep working, alone or mixed in', async () => {
        const [manual, auto, plain] = await products('manual', 'auto', 'manual');
        const { path } = await app();
        const apiProducts = [{ apiproduct: manual, status: 'approved' }, { apiproduct: auto, status: 'revoked' }, plain];
        const r = await api('POST', `${path}/keys`, { consumerKey: legacy(), apiProducts });
        assert.equal(r.status, 201, JSON.stringify(r.body));
        const expected = [{ apiproduct: manual, status: 'approved' }, { apiproduct: auto, status: 'revoked' }, { apiproduct: plain, status: 'pending' }];
        assert.deepEqual(r.body.apiProducts, expected);
        assert.deepEqual((await db.credentials.get(r.body.keyId)).apiProducts, expected);
        assert.deepEqual(paths(await api('POST', `${path}/keys`, { consumerKey: legacy(), apiProducts: [auto, { apiproduct: manual, status: 'live' }] })), ['apiProducts[1]']);
        assert.deepEqual(paths(await api('POST', `${path}/keys`, { consumerKey: legacy(), apiProducts: [{ apiproduct: 'nope', status: 'approved' }] })), ['apiProducts[0]']);
        assert.deepEqual(paths(await api('POST', `${path}/keys`, { apiProducts: [{ apiproduct: auto, status: 'approved' }] })), ['apiProducts[0]']);
      });

      test('expiresAt and issuedAt as epoch milliseconds or ISO-8601 are the key\'s own', async () => {
        const { path } = await app();
        const keys = `${path}/keys`;
        const expires = Date.UTC(2030, 0, 1);
        const issued = Date.UTC(2021, 5, 1, 12, 30);
        for (const [expiresAt, issuedAt] of [[expires, issued], [String(expires), String(issued)], ['2030-01-01T00:00:00Z', '2021-06-01T14:30:00+02:00'], ['2030-01-01T00:00:00.000000+00:00', '2021-06-01 12:30:00']]) {
          const r = await api('POST', keys, { consumerKey: legacy(), expiresAt, issuedAt });
          assert.equal(r.status, 201, JSON.stringify(r.body));
          assert.deepEqual([r.body.expiresAt, r.body.issuedAt], [expires, issued], `${expiresAt}, ${issuedAt}`);
          const stored = await db.credentials.get(r.body.keyId);
          assert.deepEqual([Date.parse(stored.expiresAt ?? ''), Date.parse(stored.issuedAt)], [expires, issued]);
        }
        for (const never of [-1, '-1', null]) assert.equal((await api('POST', keys, { consumerKey: legacy(), expiresAt: never })).body.expiresAt, -1);
        const past = await api('POST', keys, { consumerKey: legacy(), expiresAt: '2024-01-01T00:00:00Z' });
        assert.deepEqual([past.status, past.body.expiresAt], [201, Date.UTC(2024, 0, 1)], 'a key expired at its source stays expired');

        const both = await api('POST', keys, { consumerKey: legacy(), expiresAt: expires, expiresInSeconds: 60 });
        assert.equal(both.status, 400);
        assert.deepEqual(paths(both), ['expiresAt', 'expiresInSeconds']);
        assert.match(both.body.error.details[0].message, /expiresAt and expiresInSeconds/);
        const refused: [unknown, string][] = [
          [{ issuedAt: Date.now() + 3_600_000 }, 'issuedAt'],
          [{ issuedAt: Math.floor(issued / 1000) }, 'issuedAt'], // epoch seconds
          [{ expiresAt: 1.5e12 + 0.5 }, 'expiresAt'],
          [{ expiresAt: 'next year' }, 'expiresAt'],
          [{ expiresAt: '2030-02-31T00:00:00Z' }, 'expiresAt'],
          [{ expiresAt: Date.now() + 200 * 365 * 86_400_000 }, 'expiresAt'],
          [{ expiresAt: true }, 'expiresAt'],
          [{ issuedAt: -1 }, 'issuedAt'],
          [{ issuedAt: issued, expiresAt: issued - 1 }, 'expiresAt'],
        ];
        for (const [fields, field] of refused) {
          const r = await api('POST', keys, { consumerKey: legacy(), ...(fields as object) });
          assert.deepEqual([r.status, paths(r)], [400, [field]], JSON.stringify(fields));
        }
        // A generated key's expiry is relative to now; absolute dates are what an import carries over.
        assert.deepEqual(paths(await api('POST', keys, { expiresAt: expires, issuedAt: issued })), ['expiresAt', 'issuedAt']);
      });

      test('a retried import answers 200 with the key it made; a different one, or another app\'s key, stays 409', async () => {
        const [p, q] = await products('auto', 'auto');
        const { app: created, path } = await app();
        const consumerKey = legacy();
        const body = { consumerKey, consumerSecret: 'legacy-secret-0123456789', apiProducts: [{ apiproduct: p, status: 'revoked' }], expiresAt: Date.UTC(2030, 0, 1), issuedAt: Date.UTC(2022, 0, 1) };
        const first = await api('POST', `${path}/keys`, body);
        assert.equal(first.status, 201, JSON.stringify(first.body));
        const again = await api('POST', `${path}/keys`, body);
        assert.equal(again.status, 200, JSON.stringify(again.body));
        assert.deepEqual(again.body, first.body);
        assert.equal((await db.credentials.listAllForApp(created.id)).length, 1);
        const audit = await api('GET', `/v1/audit?resourceType=credential&resourceName=${first.body.keyId}`);
        assert.equal(audit.body.items.length, 1, 'a retry changes nothing, so writes no audit row');

        for (const differs of [{ status: 'revoked' }, { consumerSecret: 'another-secret-0123456789' }, { consumerSecret: undefined }, { apiProducts: [p] }, { apiProducts: [{ apiproduct: p, status: 'revoked' }, q] }, { expiresAt: -1 }, { issuedAt: Date.UTC(2022, 0, 2) }]) {
          const r = await api('POST', `${path}/keys`, { ...body, ...differs });
          assert.deepEqual([r.status, paths(r)], [409, ['consumerKey']], JSON.stringify(differs));
          assert.ok(r.body.error.message.includes(first.body.keyId), 'names this app\'s own key');
        }

        const other = await app();
        const elsewhere = await api('POST', `${other.path}/keys`, body);
        assert.deepEqual([elsewhere.status, paths(elsewhere)], [409, ['consumerKey']]);
        const text = JSON.stringify(elsewhere.body);
        for (const leak of [path.split('/')[3], created.id, first.body.keyId, consumerKey]) assert.ok(!text.includes(leak), `the 409 does not name ${leak}`);
      });

      test("a retried import that names no products answers 200 though the app's keys hold others since", async () => {
        const [p, q] = await products('auto', 'auto');
        const { path } = await app();
        await api('POST', `${path}/keys`, { apiProducts: [p] });
        const body = { consumerKey: legacy() };
        const first = await api('POST', `${path}/keys`, body);
        assert.deepEqual([first.status, first.body.apiProducts.map((g: { apiproduct: string }) => g.apiproduct)], [201, [p]]);
        // Another key of the app gains a product: a key imported now without a list would get both.
        assert.equal((await api('POST', `${path}/keys`, { apiProducts: [p, q] })).status, 201);
        const again = await api('POST', `${path}/keys`, body);
        assert.equal(again.status, 200, JSON.stringify(again.body));
        assert.equal(again.body.keyId, first.body.keyId);
      });

      test('Apigee Edge\'s POST …/keys/create imports as POST …/keys does', async () => {
        const [p] = await products('auto');
        const { path } = await app();
        const consumerKey = legacy();
        const r = await api('POST', `${path}/keys/create`, { consumerKey, consumerSecret: 'legacy-secret-0123456789', apiProducts: [p], status: 'revoked' });
        assert.equal(r.status, 201, JSON.stringify(r.body));
        assert.deepEqual([r.body.consumerKey, r.body.status], [consumerKey, 'revoked']);
        assert.equal((await db.credentials.findByKey(consumerKey))?.keyId, r.body.keyId);
        const generated = await api('POST', `${path}/keys/create`, {});
        assert.deepEqual([generated.status, paths(generated)], [400, ['consumerKey']]);
        assert.match(generated.body.error.details[0].message, /POST \/v1\/developers\/\{email\}\/apps\/\{app\}\/keys issues/);
        assert.equal((await api('POST', `${path}/keys/${r.body.keyId}?action=approve`)).body.status, 'approved', 'a key id still reaches its key');
      });

      test('a key or secret shorter than 16 characters is refused, saying it must be rotated', async () => {
        const { path } = await app();
        for (const body of [{ consumerKey: 'short-key-12345' }, { consumerKey: legacy(), consumerSecret: 'short' }]) {
          const r = await api('POST', `${path}/keys`, body);
          assert.equal(r.status, 400);
          assert.match(r.body.error.details[0].message, /at least 16 characters: a shorter legacy (key|secret) cannot be imported and must be rotated/);
        }
      });
    });
  });
}
