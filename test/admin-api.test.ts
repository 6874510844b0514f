// The API-management admin API over real HTTP on loopback, one suite looped over SQLite and PostgreSQL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { registerApimAdminRoutes } from '../src/apim/admin-routes.js';
import { AdminRouter } from '../src/gateway/admin-router.js';
import { API_KEY_PATTERN, hashKey, type Database } from '../src/store/index.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../src/store/test-databases.js';
import { serveAdmin, type ServedAdmin } from './helpers/apim-admin.js';

interface Answer {
  status: number;
  body: any;
  text: string;
}

async function call(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, text };
}

function paths(answer: Answer): string[] {
  return (answer.body.error.details ?? []).map((d: { path: string }) => d.path);
}

/** Every row of every table, as text: for proving that a secret is stored nowhere. */
async function everyRow(db: Database): Promise<string> {
  const tables = ['api_products', 'operation_sets', 'manifests', 'developers', 'apps', 'credentials', 'kvm_entries', 'audit_log'] as const;
  const rows = [];
  for (const table of tables) rows.push(await db.kysely.selectFrom(table).selectAll().execute());
  return JSON.stringify(rows);
}

const PRODUCTS_YAML = (suffix: string, displayName = 'Gold') => `
apiVersion: apim.googleapis.com/v1
kind: APIProduct
metadata: { name: gold-${suffix} }
spec:
  displayName: ${displayName}
  approvalType: auto
  enforcementRefs: [{ name: ext }]
---
apiVersion: apim.googleapis.com/v1
kind: APIOperationSet
metadata: { name: chat-${suffix} }
spec:
  apiProductRefs: [{ name: gold-${suffix} }]
  quota: { limit: 100, interval: 1, timeUnit: minute }
  llmOperations: { models: [m] }
---
apiVersion: apim.googleapis.com/v1
kind: SpikeArrest
metadata: { name: spike-${suffix} }
spec: { rate: 10ps }
`;

for (const backend of DATABASE_BACKENDS) {
  describe(`admin API (${backend.name})`, { skip: backend.skip }, () => {
    let target: TestDatabase;
    let db: Database;
    let open: ServedAdmin;
    let guarded: ServedAdmin;
    let seq = 0;
    const unique = (prefix: string) => `${prefix}-${++seq}`;
    const fileOwned = new Set(['APIProduct/from-file', 'SpikeArrest/from-file']);
    const api = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => call(open.url, method, path, body, headers);

    before(async () => {
      target = await backend.create();
      db = await target.open();
      const deps = { db, fileOwned: (kind: string, name: string) => fileOwned.has(`${kind}/${name}`) };
      const router = new AdminRouter(undefined);
      registerApimAdminRoutes(router, deps);
      open = await serveAdmin(router);
      const withToken = new AdminRouter('s3cret-admin-token');
      registerApimAdminRoutes(withToken, deps);
      guarded = await serveAdmin(withToken);
    });
    after(async () => {
      await open?.close();
      await guarded?.close();
      await db?.close();
      await target?.dispose();
    });

    async function developer(): Promise<string> {
      const email = `${unique('dev')}@example.com`;
      assert.equal((await api('POST', '/v1/developers', { email, firstName: 'Ada', lastName: 'L', userName: 'ada' })).status, 201);
      return email;
    }

    async function product(approvalType: 'auto' | 'manual' = 'auto'): Promise<string> {
      const name = unique('product');
      assert.equal((await api('POST', '/v1/apiproducts', { name, displayName: name, approvalType })).status, 201);
      return name;
    }

    test('API products: create, read, list, replace, delete', async () => {
      const name = unique('product');
      const created = await api('POST', '/v1/apiproducts', { name, displayName: 'Gold', description: 'the good stuff', approvalType: 'manual', attributes: [{ name: 'tier', value: 'gold' }] });
      assert.equal(created.status, 201);
      assert.equal(created.body.name, name);
      assert.equal(created.body.approvalType, 'manual');
      assert.deepEqual(created.body.attributes, [{ name: 'tier', value: 'gold' }]);
      assert.equal(typeof created.body.createdAt, 'number');

      await db.operationSets.apply({ name: unique('set'), spec: { apiProductRefs: [{ name }] } });
      const read = await api('GET', `/v1/apiproducts/${name}`);
      assert.equal(read.status, 200);
      assert.equal(read.body.operationSets.length, 1);

      const list = await api('GET', '/v1/apiproducts');
      assert.ok(list.body.items.some((p: { name: string }) => p.name === name));

      const replaced = await api('PUT', `/v1/apiproducts/${name}`, { displayName: 'Gold 2' });
      assert.equal(replaced.status, 200);
      assert.equal(replaced.body.displayName, 'Gold 2');
      assert.equal(replaced.body.description, '', 'PUT replaces: fields left out return to their defaults');
      assert.equal(replaced.body.approvalType, 'auto');

      assert.equal((await api('DELETE', `/v1/apiproducts/${name}`)).body.name, name);
      const gone = await api('GET', `/v1/apiproducts/${name}`);
      assert.equal(gone.status, 404);
      assert.equal(gone.body.error.code, 'not_found');
    });

    test('API products: 400 with field paths, 409 on a taken name, renaming refused', async () => {
      const bad = await api('POST', '/v1/apiproducts', { displayName: 7, approvalType: 'sometimes', extra: true });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, 'invalid');
      assert.deepEqual(paths(bad).sort(), ['(body)', 'approvalType', 'displayName', 'name']);
      const name = await product();
      const taken = await api('POST', '/v1/apiproducts', { name });
      assert.equal(taken.status, 409);
      assert.deepEqual(paths(taken), ['name']);
      const renamed = await api('PUT', `/v1/apiproducts/${name}`, { name: 'other' });
      assert.equal(renamed.status, 400);
      assert.deepEqual(paths(renamed), ['name']);
      assert.equal((await api('PUT', '/v1/apiproducts/nope', {})).status, 404);
    });

    test('objects owned by --config files answer 409', async () => {
      for (const [method, path] of [['POST', '/v1/apiproducts'], ['PUT', '/v1/apiproducts/from-file'], ['DELETE', '/v1/apiproducts/from-file']] as const) {
        const r = await api(method, path, method === 'DELETE' ? undefined : { name: 'from-file' });
        assert.equal(r.status, 409, `${method} ${path}`);
        assert.equal(r.body.error.code, 'file_owned');
      }
      // Stored by the config loader with owner "file": refused as well.
      const name = unique('loaded');
      await db.products.apply({ name, owner: 'file' });
      assert.equal((await api('PUT', `/v1/apiproducts/${name}`, {})).status, 409);
      const applied = await api('POST', '/v1/apply', PRODUCTS_YAML(unique('x')) + '---\napiVersion: apim.googleapis.com/v1\nkind: SpikeArrest\nmetadata: { name: from-file }\nspec: { rate: 1ps }\n');
      assert.equal(applied.status, 409);
      assert.deepEqual(paths(applied), ['[3]']);
    });

    test('developers: create, read, list, replace, status actions, delete', async () => {
      const email = `${unique('dev')}@example.com`;
      const created = await api('POST', '/v1/developers', { email, firstName: 'Ada', lastName: 'Lovelace', userName: 'ada', attributes: [{ name: 'team', value: 'x' }] });
      assert.equal(created.status, 201);
      assert.equal(created.body.status, 'active');
      assert.ok(created.body.developerId);
      assert.equal((await api('GET', `/v1/developers/${encodeURIComponent(email.toUpperCase())}`)).body.email, email, 'emails match in any case');
      assert.ok((await api('GET', '/v1/developers?pageSize=1000')).body.items.some((d: { email: string }) => d.email === email));

      const replaced = await api('PUT', `/v1/developers/${email}`, { firstName: 'Augusta' });
      assert.equal(replaced.body.firstName, 'Augusta');
      assert.equal(replaced.body.lastName, '');

      for (const [action, status] of [['inactive', 'inactive'], ['active', 'active'], ['revoke', 'inactive'], ['approve', 'active']]) {
        const r = await api('POST', `/v1/developers/${email}?action=${action}`);
        assert.equal(r.body.status, status, action);
      }
      const noAction = await api('POST', `/v1/developers/${email}?action=sleep`);
      assert.equal(noAction.status, 400);
      assert.deepEqual(paths(noAction), ['action']);

      assert.equal((await api('DELETE', `/v1/developers/${email}`)).status, 200);
      assert.equal((await api('GET', `/v1/developers/${email}`)).status, 404);
    });

    test('developers: invalid email, taken email', async () => {
      const bad = await api('POST', '/v1/developers', { email: 'not-an-email' });
      assert.equal(bad.status, 400);
      assert.deepEqual(paths(bad), ['email']);
      const email = await developer();
      const taken = await api('POST', '/v1/developers', { email: email.toUpperCase() });
      assert.equal(taken.status, 409);
      assert.deepEqual(paths(taken), ['email']);
    });

    test('apps: the key is shown once, stored only as a hash, never answered again', async () => {
      const email = await developer();
      const [a, b] = [await product(), await product()];
      const created = await api('POST', `/v1/developers/${email}/apps`, { name: 'chat-app', apiProducts: [a, b], callbackUrl: 'https://example.com/cb' });
      assert.equal(created.status, 201);
      const cred = created.body.credentials[0];
      assert.match(cred.consumerKey, API_KEY_PATTERN);
      assert.match(cred.consumerSecret, /^tgs_/);
      assert.match(cred.keyId, /^key_/);
      assert.equal(cred.status, 'approved');
      assert.deepEqual(cred.apiProducts, [{ apiproduct: a, status: 'approved' }, { apiproduct: b, status: 'approved' }]);
      assert.equal(cred.expiresAt, -1);
      assert.ok(Math.abs(cred.issuedAt - Date.now()) < 60_000);

      const answers = [
        await api('GET', `/v1/developers/${email}/apps/chat-app`),
        await api('GET', `/v1/developers/${email}/apps`),
        await api('GET', `/v1/developers/${email}/apps/chat-app/keys`),
        await api('GET', `/v1/developers/${email}/apps/chat-app/keys/${cred.keyId}`),
        await api('PUT', `/v1/developers/${email}/apps/chat-app`, { attributes: [{ name: 'x', value: 'y' }] }),
        await api('GET', '/v1/audit?pageSize=1000'),
      ];
      for (const r of answers) {
        assert.equal(r.status, 200);
        assert.ok(!r.text.includes(cred.consumerKey) && !r.text.includes(cred.consumerSecret), 'no key or secret after the creating answer');
        assert.ok(!r.text.includes('consumerKey'));
      }
      assert.equal(answers[0].body.credentials[0].keyId, cred.keyId);
      assert.equal(answers[2].body.items[0].keyId, cred.keyId);

      const rows = await everyRow(db);
      assert.ok(!rows.includes(cred.consumerKey), 'the raw key is stored nowhere');
      assert.ok(!rows.includes(cred.consumerSecret), 'the raw secret is stored nowhere');
      assert.equal((await db.credentials.get(cred.keyId)).keyHash, hashKey(cred.consumerKey));
    });

    test('apps: unknown products are 400 with the index, and nothing is created', async () => {
      const email = await developer();
      const known = await product();
      const r = await api('POST', `/v1/developers/${email}/apps`, { name: 'app', apiProducts: [known, 'missing'] });
      assert.equal(r.status, 400);
      assert.deepEqual(paths(r), ['apiProducts[1]']);
      assert.equal((await api('GET', `/v1/developers/${email}/apps/app`)).status, 404);
      const twice = await api('POST', `/v1/developers/${email}/apps`, { name: 'app', apiProducts: [known, known] });
      assert.deepEqual(paths(twice), ['apiProducts[1]']);
      assert.equal((await api('POST', '/v1/developers/nobody@example.com/apps', { name: 'app' })).status, 404);
      assert.equal((await api('POST', `/v1/developers/${email}/apps`, { name: 'app' })).status, 201);
      const again = await api('POST', `/v1/developers/${email}/apps`, { name: 'app' });
      assert.equal(again.status, 409);
      assert.deepEqual(paths(again), ['name']);
    });

    test('manual approval, key and app revoke/approve', async () => {
      const email = await developer();
      const [auto, manual] = [await product('auto'), await product('manual')];
      const app = await api('POST', `/v1/developers/${email}/apps`, { name: 'app', apiProducts: [auto, manual] });
      const { keyId } = app.body.credentials[0];
      assert.deepEqual(app.body.credentials[0].apiProducts, [{ apiproduct: auto, status: 'approved' }, { apiproduct: manual, status: 'pending' }]);

      const keyPath = `/v1/developers/${email}/apps/app/keys/${keyId}`;
      const approved = await api('POST', `${keyPath}/apiproducts/${manual}?action=approve`);
      assert.equal(approved.status, 200);
      assert.deepEqual(approved.body.apiProducts[1], { apiproduct: manual, status: 'approved' });
      assert.deepEqual((await api('POST', `${keyPath}/apiproducts/${auto}?action=revoke`)).body.apiProducts[0], { apiproduct: auto, status: 'revoked' });
      assert.equal((await api('POST', `${keyPath}/apiproducts/not-granted?action=approve`)).status, 404);

      assert.equal((await api('POST', `${keyPath}?action=revoke`)).body.status, 'revoked');
      assert.equal((await db.credentials.get(keyId)).status, 'revoked');
      assert.equal((await api('POST', `${keyPath}?action=approve`)).body.status, 'approved');
      assert.equal((await api('POST', `${keyPath}?action=pause`)).status, 400);

      assert.equal((await api('POST', `/v1/developers/${email}/apps/app?action=revoke`)).body.status, 'revoked');
      assert.equal((await api('POST', `/v1/developers/${email}/apps/app?action=approve`)).body.status, 'approved');

      // PUT with apiProducts re-grants every key: kept products keep their status, new manual ones start pending.
      const other = await product('manual');
      const put = await api('PUT', `/v1/developers/${email}/apps/app`, { apiProducts: [manual, other] });
      assert.deepEqual(put.body.credentials[0].apiProducts, [{ apiproduct: manual, status: 'approved' }, { apiproduct: other, status: 'pending' }]);
    });

    test('keys: another key, expiry in seconds, import, delete, another app\'s key is 404', async () => {
      const email = await developer();
      const p = await product();
      const app = await api('POST', `/v1/developers/${email}/apps`, { name: 'app', apiProducts: [p], keyExpiresIn: 60_000 });
      assert.ok(Math.abs(app.body.credentials[0].expiresAt - (Date.now() + 60_000)) < 30_000, 'keyExpiresIn is milliseconds');
      const keys = `/v1/developers/${email}/apps/app/keys`;

      const second = await api('POST', keys, { expiresInSeconds: 3600 });
      assert.equal(second.status, 201);
      assert.match(second.body.consumerKey, API_KEY_PATTERN);
      assert.ok(Math.abs(second.body.expiresAt - (Date.now() + 3_600_000)) < 30_000);
      assert.deepEqual(second.body.apiProducts, [{ apiproduct: p, status: 'approved' }], 'defaults to the products of the app');
      // Apigee's spellings, as an app's keyExpiresIn takes them: an int64 as a string, and -1 for never.
      const spelt = await api('POST', keys, { expiresInSeconds: '3600' });
      assert.equal(spelt.status, 201, spelt.text);
      assert.ok(Math.abs(spelt.body.expiresAt - (Date.now() + 3_600_000)) < 30_000);
      for (const never of [-1, '-1']) {
        const r = await api('POST', keys, { expiresInSeconds: never });
        assert.deepEqual([r.status, r.body.expiresAt], [201, -1], `${JSON.stringify(never)}: ${r.text}`);
      }

      const legacy = 'legacy-key-0123456789';
      const imported = await api('POST', keys, { consumerKey: legacy, apiProducts: [] });
      assert.equal(imported.status, 201);
      assert.equal(imported.body.consumerKey, legacy);
      assert.equal(imported.body.consumerSecret, null);
      assert.equal((await db.credentials.findByKey(legacy))?.keyId, imported.body.keyId);
      // Not a retry of the import above (that answers 200 with its key): another secret.
      const dup = await api('POST', keys, { consumerKey: legacy, consumerSecret: 'another-secret-0123456789' });
      assert.equal(dup.status, 409);
      assert.deepEqual(paths(dup), ['consumerKey']);
      assert.ok(!dup.text.includes(legacy));
      const short = await api('POST', keys, { consumerKey: 'short-key-12345' });
      assert.equal(short.status, 400);
      assert.deepEqual(paths(short), ['consumerKey']);
      assert.ok(!short.text.includes('short-key-12345'));
      // A key a Bearer header could not carry as a key (before: imported, then usable only in x-api-key).
      for (const unusable of ['legacy key with spaces 012', 'aaaaaaaa.bbbbbbbb.cccccccc', 'tgat_0123456789abcdefgh']) {
        const r = await api('POST', keys, { consumerKey: unusable });
        assert.equal(r.status, 400, unusable);
        assert.deepEqual(paths(r), ['consumerKey']);
        assert.ok(!r.text.includes(unusable));
      }
      assert.deepEqual(paths(await api('POST', keys, { consumerSecret: 'a-secret-without-key' })), ['consumerSecret']);
      assert.deepEqual(paths(await api('POST', keys, { expiresInSeconds: -5 })), ['expiresInSeconds']);
      assert.deepEqual(paths(await api('POST', keys, { expiresInSeconds: 1e12 })), ['expiresInSeconds']);
      assert.deepEqual(paths(await api('POST', keys, { expiresInSeconds: '1.5' })), ['expiresInSeconds']);
      assert.deepEqual(paths(await api('POST', `/v1/developers/${email}/apps`, { name: 'late', keyExpiresIn: '1e99' })), ['keyExpiresIn']);
      assert.ok(!(await everyRow(db)).includes(legacy));

      assert.equal((await api('DELETE', `${keys}/${second.body.keyId}`)).status, 200);
      assert.equal((await api('GET', `${keys}/${second.body.keyId}`)).status, 404);

      await api('POST', `/v1/developers/${email}/apps`, { name: 'other' });
      assert.equal((await api('GET', `/v1/developers/${email}/apps/other/keys/${imported.body.keyId}`)).status, 404);
      assert.equal((await api('POST', `/v1/developers/${email}/apps/other/keys/${imported.body.keyId}?action=revoke`)).status, 404);
      assert.equal((await api('GET', `/v1/developers/${email}/apps/nope/keys`)).status, 404);

      const deleted = await api('DELETE', `/v1/developers/${email}/apps/app`);
      assert.equal(deleted.body.credentials.length, 5);
      assert.equal(await db.credentials.find(imported.body.keyId), undefined, 'an app\'s keys go with it');
    });

    test('lists are paginated', async () => {
      const email = await developer();
      await api('POST', `/v1/developers/${email}/apps`, { name: 'app' });
      const keys = `/v1/developers/${email}/apps/app/keys`;
      for (let i = 0; i < 4; i++) await api('POST', keys, {});
      const seen: string[] = [];
      const sizes: number[] = [];
      let token: string | undefined;
      do {
        const page = await api('GET', `${keys}?pageSize=2${token ? `&pageToken=${token}` : ''}`);
        assert.equal(page.status, 200);
        sizes.push(page.body.items.length);
        seen.push(...page.body.items.map((k: { keyId: string }) => k.keyId));
        token = page.body.nextPageToken;
      } while (token);
      assert.deepEqual(sizes, [2, 2, 1]);
      assert.equal(new Set(seen).size, 5);

      for (const query of ['pageSize=0', 'pageSize=1001', 'pageSize=two']) assert.deepEqual(paths(await api('GET', `/v1/apiproducts?${query}`)), ['pageSize'], query);
      assert.deepEqual(paths(await api('GET', '/v1/developers?pageToken=bogus')), ['pageToken']);
    });

    test('apply: all or none, idempotent, updates, kinds of the gateway refused', async () => {
      const s = unique('a');
      const bad = await api('POST', '/v1/apply', PRODUCTS_YAML(s) + '---\napiVersion: apim.googleapis.com/v1\nkind: APIProduct\nmetadata: { name: broken }\nspec: { approvalType: never }\n');
      assert.equal(bad.status, 400);
      assert.deepEqual(paths(bad).sort(), ['[3].spec.approvalType', '[3].spec.displayName']);
      assert.equal(await db.products.find(`gold-${s}`), undefined, 'one bad document: nothing written');
      assert.equal(await db.operationSets.find(`chat-${s}`), undefined);

      const first = await api('POST', '/v1/apply', PRODUCTS_YAML(s));
      assert.equal(first.status, 200);
      assert.deepEqual(first.body.results, [
        { kind: 'APIProduct', name: `gold-${s}`, outcome: 'created' },
        { kind: 'APIOperationSet', name: `chat-${s}`, outcome: 'created' },
        { kind: 'SpikeArrest', name: `spike-${s}`, outcome: 'created' },
      ]);
      const stored = await db.products.get(`gold-${s}`);
      assert.equal(stored.displayName, 'Gold');
      assert.deepEqual(stored.spec, { enforcementRefs: [{ name: 'ext' }] });
      assert.equal((await db.manifests.get('SpikeArrest', `spike-${s}`)).spec.rate, '10ps');
      assert.deepEqual((await api('GET', `/v1/apiproducts/gold-${s}`)).body.operationSets, [`chat-${s}`]);

      const again = await api('POST', '/v1/apply', PRODUCTS_YAML(s));
      assert.deepEqual(again.body.results.map((r: { outcome: string }) => r.outcome), ['unchanged', 'unchanged', 'unchanged']);
      const changed = await api('POST', '/v1/apply', PRODUCTS_YAML(s, 'Platinum'));
      assert.deepEqual(changed.body.results.map((r: { outcome: string }) => r.outcome), ['updated', 'unchanged', 'unchanged']);

      const asJson = await api('POST', '/v1/apply', [{ apiVersion: 'apim.googleapis.com/v1', kind: 'SpikeArrest', metadata: { name: `spike-${s}` }, spec: { rate: '10ps' } }]);
      assert.deepEqual(asJson.body.results, [{ kind: 'SpikeArrest', name: `spike-${s}`, outcome: 'unchanged' }]);

      const pool = await api('POST', '/v1/apply', [{ apiVersion: 'inference.networking.k8s.io/v1', kind: 'InferencePool', metadata: { name: 'p' }, spec: {} }]);
      assert.equal(pool.status, 400);
      assert.deepEqual(paths(pool), ['[0].kind']);
      for (const kind of ['Gizmo', 'toString']) {
        const unknown = await api('POST', '/v1/apply', [{ apiVersion: 'apim.googleapis.com/v1', kind, metadata: { name: 'g' }, spec: {} }]);
        assert.equal(unknown.status, 400, kind);
        assert.match(unknown.body.error.details[0].message, /unknown kind .*APIProduct/);
      }
      const twice = await api('POST', '/v1/apply', PRODUCTS_YAML(s) + PRODUCTS_YAML(s).replace(/^/, '---'));
      assert.ok(paths(twice).includes('[3].metadata.name'));
      assert.deepEqual(paths(await api('POST', '/v1/apply', 'kind: [unclosed')), ['[0]']);
      assert.deepEqual(paths(await api('POST', '/v1/apply', '')), ['(body)']);
    });

    test('apply ?dryRun=true reports what would change and writes nothing', async () => {
      const s = unique('dry');
      const before = await api('GET', '/v1/audit?pageSize=1');
      const dry = await api('POST', '/v1/apply?dryRun=true', PRODUCTS_YAML(s));
      assert.equal(dry.status, 200);
      assert.equal(dry.body.dryRun, true);
      assert.deepEqual(dry.body.results.map((r: { outcome: string }) => r.outcome), ['created', 'created', 'created']);
      assert.equal(await db.products.find(`gold-${s}`), undefined);
      assert.equal(await db.manifests.find('SpikeArrest', `spike-${s}`), undefined);
      assert.deepEqual((await api('GET', '/v1/audit?pageSize=1')).body.items, before.body.items, 'no audit rows either');
      assert.deepEqual(paths(await api('POST', '/v1/apply?dryRun=maybe', PRODUCTS_YAML(s))), ['dryRun']);
    });

    test('every change is audited with its actor', async () => {
      const email = `${unique('audited')}@example.com`;
      await api('POST', '/v1/developers', { email }, { 'x-tollgate-actor': 'alice@example.com' });
      const audit = await api('GET', `/v1/audit?resourceType=developer&resourceName=${encodeURIComponent(email)}`);
      assert.equal(audit.body.items.length, 1);
      assert.equal(audit.body.items[0].actor, 'loopback:alice@example.com');
      assert.equal(audit.body.items[0].action, 'create');
      // Without an admin token configured, any Bearer header is just a header: it cannot make the caller `admin`.
      const spoofed = `${unique('spoofed')}@example.com`;
      await api('POST', '/v1/developers', { email: spoofed }, { authorization: 'Bearer anything' });
      const spoofedAudit = await api('GET', `/v1/audit?resourceType=developer&resourceName=${encodeURIComponent(spoofed)}`);
      assert.equal(spoofedAudit.body.items[0].actor, 'loopback');

      await call(guarded.url, 'PUT', `/v1/developers/${email}`, { firstName: 'A' }, { authorization: 'Bearer s3cret-admin-token' });
      const after = await api('GET', `/v1/audit?resourceType=developer&resourceName=${encodeURIComponent(email)}`);
      assert.deepEqual(after.body.items.map((e: { actor: string }) => e.actor), ['admin', 'loopback:alice@example.com']);

      const bad = await api('POST', '/v1/developers', { email: `${unique('x')}@example.com` }, { 'x-tollgate-actor': 'a b c' });
      assert.equal(bad.status, 400);
      assert.deepEqual(paths(bad), ['headers.x-tollgate-actor']);
    });

    test('malformed JSON is a 400', async () => {
      const r = await api('POST', '/v1/developers', '{"email": ');
      assert.equal(r.status, 400);
      assert.equal(r.body.error.code, 'invalid_json');
    });

    test('with an admin token: missing or wrong is 401, right is 200', async () => {
      assert.equal((await call(guarded.url, 'GET', '/v1/apiproducts')).status, 401);
      assert.equal((await call(guarded.url, 'GET', '/v1/apiproducts', undefined, { authorization: 'Bearer wrong' })).status, 401);
      assert.equal((await call(guarded.url, 'POST', '/v1/apply', PRODUCTS_YAML(unique('t')))).status, 401);
      assert.equal((await call(guarded.url, 'GET', '/v1/apiproducts', undefined, { authorization: 'Bearer s3cret-admin-token' })).status, 200);
    });
  });
}
