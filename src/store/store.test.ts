// The shared Store suite: every repository, pagination, audit rows, transactions and snapshots, on every backend.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChangeEvent } from './change-feed.js';
import type { Database } from './database.js';
import { ConflictError, InvalidPageTokenError, NotFoundError } from './errors.js';
import { API_KEY_PATTERN, hashKey, verifySecret } from './keys.js';
import { DATABASE_BACKENDS, openForSuite } from './test-databases.js';

for (const backend of DATABASE_BACKENDS) {
  describe(backend.name, { skip: backend.skip }, () => {
    let db: Database;
    let seq = 0;
    /** Unique names, since the tests of one backend share a database. */
    const unique = (prefix: string) => `${prefix}-${++seq}-${Date.now().toString(36)}`;

    openForSuite(backend, (opened) => (db = opened));

    describe('api products', () => {
      test('create, read, update, delete', async () => {
        const name = unique('product');
        const created = await db.products.create({
          name,
          displayName: 'Gold',
          approvalType: 'manual',
          attributes: [{ name: 'tier', value: 'gold' }],
          operationSets: ['chat'],
          quota: { limit: 100, interval: 1, timeUnit: 'minute' },
          scopes: ['read'],
          spec: { enforcementRefs: [{ name: 'ext' }] },
        });
        assert.equal(created.owner, 'api');
        assert.deepEqual(await db.products.get(name), created);
        const updated = await db.products.update(name, { description: 'the gold tier', quota: null });
        assert.equal(updated.description, 'the gold tier');
        assert.equal(updated.quota, null);
        assert.equal(updated.displayName, 'Gold');
        assert.notEqual(updated.contentHash, created.contentHash);
        assert.deepEqual(await db.products.delete(name), updated);
        assert.equal(await db.products.find(name), undefined);
      });

      test('typed errors for duplicates and missing products', async () => {
        const name = unique('product');
        await db.products.create({ name });
        await assert.rejects(db.products.create({ name }), (err: unknown) => err instanceof ConflictError && err.resourceName === name);
        await assert.rejects(db.products.get('missing'), NotFoundError);
        await assert.rejects(db.products.update('missing', { description: 'x' }), NotFoundError);
        await assert.rejects(db.products.delete('missing'), NotFoundError);
      });

      test('apply: created, then unchanged without a write, then updated', async () => {
        const name = unique('product');
        const input = { name, owner: 'file' as const, spec: { b: 1, a: { y: 2, x: 1 } } };
        assert.equal((await db.products.apply(input)).outcome, 'created');
        const auditBefore = await db.audit.list({ resourceType: 'apiproduct', resourceName: name });
        const again = await db.products.apply({ ...input, spec: { a: { x: 1, y: 2 }, b: 1 } });
        assert.equal(again.outcome, 'unchanged');
        assert.deepEqual(await db.audit.list({ resourceType: 'apiproduct', resourceName: name }), auditBefore);
        const changed = await db.products.apply({ ...input, description: 'new' });
        assert.equal(changed.outcome, 'updated');
        assert.equal(changed.item.owner, 'file');
      });

      test('concurrent applies of the same new product all succeed', async () => {
        const name = unique('product');
        const results = await Promise.all([1, 2, 3].map(() => db.products.apply({ name, description: 'same' })));
        assert.ok(results.some((r) => r.outcome === 'created'));
        assert.equal((await db.products.get(name)).description, 'same');
      });
    });

    describe('operation sets and manifests', () => {
      test('operation sets apply idempotently', async () => {
        const name = unique('opset');
        const spec = { apiProductRefs: [{ name: 'gold' }], llmOperations: { models: ['m'] } };
        assert.equal((await db.operationSets.apply({ name, spec })).outcome, 'created');
        assert.equal((await db.operationSets.apply({ name, spec })).outcome, 'unchanged');
        assert.equal((await db.operationSets.apply({ name, spec, owner: 'file' })).outcome, 'updated');
        assert.deepEqual((await db.operationSets.get(name)).spec, spec);
        await db.operationSets.delete(name);
        await assert.rejects(db.operationSets.get(name), NotFoundError);
      });

      test('manifests keyed by (kind, name), listed by kind', async () => {
        const kind = unique('SpikeArrest');
        const m = { kind, apiVersion: 'apim.googleapis.com/v1', spec: { rate: '5ps' } };
        assert.equal((await db.manifests.apply({ ...m, name: 'a' })).outcome, 'created');
        assert.equal((await db.manifests.apply({ ...m, name: 'a' })).outcome, 'unchanged');
        assert.equal((await db.manifests.apply({ ...m, name: 'a', apiVersion: 'apim.googleapis.com/v2' })).outcome, 'updated');
        await db.manifests.apply({ ...m, name: 'b' });
        await db.manifests.apply({ ...m, kind: `${kind}-other`, name: 'a' });
        const listed = await db.manifests.list({ kind });
        assert.deepEqual(listed.items.map((x) => x.name), ['a', 'b']);
        assert.equal((await db.manifests.get(kind, 'a')).apiVersion, 'apim.googleapis.com/v2');
        await db.manifests.delete(kind, 'a');
        await assert.rejects(db.manifests.delete(kind, 'a'), NotFoundError);
      });
    });

    describe('developers, apps and credentials', () => {
      test('emails are unique regardless of case and found in any case', async () => {
        const email = `${unique('Dev')}@Example.com`;
        const dev = await db.developers.create({ email, firstName: 'Ada', lastName: 'L', userName: 'ada' });
        assert.equal(dev.status, 'active');
        await assert.rejects(db.developers.create({ email: email.toUpperCase() }), ConflictError);
        assert.equal((await db.developers.get(email.toLowerCase())).id, dev.id);
        assert.equal((await db.developers.get(dev.id)).email, email);
        assert.equal((await db.developers.setStatus(email, 'inactive')).status, 'inactive');
        const other = await db.developers.create({ email: `${unique('other')}@example.com` });
        await assert.rejects(db.developers.update(other.id, { email: email.toLowerCase() }), ConflictError);
      });

      test('app names are unique per developer', async () => {
        const a = await db.developers.create({ email: `${unique('a')}@example.com` });
        const b = await db.developers.create({ email: `${unique('b')}@example.com` });
        const app = await db.apps.create(a.id, { name: 'chatbot', callbackUrl: 'https://example.com/cb' });
        assert.equal(app.status, 'approved');
        await assert.rejects(db.apps.create(a.id, { name: 'chatbot' }), ConflictError);
        await db.apps.create(b.id, { name: 'chatbot' });
        await assert.rejects(db.apps.create('no-such-developer', { name: 'x' }), NotFoundError);
        assert.equal((await db.apps.getByName(a.id, 'chatbot')).id, app.id);
        assert.equal((await db.apps.setStatus(app.id, 'revoked')).status, 'revoked');
        assert.equal((await db.apps.update(app.id, { callbackUrl: null })).callbackUrl, null);
      });

      test('credentials store hashes only and are found by key', async () => {
        const dev = await db.developers.create({ email: `${unique('keys')}@example.com` });
        const app = await db.apps.create(dev.id, { name: 'app' });
        const issued = await db.credentials.issue({
          appId: app.id,
          apiProducts: [{ apiproduct: 'gold', status: 'approved' }, { apiproduct: 'silver', status: 'pending' }],
          expiresAt: '2030-01-01T00:00:00Z',
        });
        assert.match(issued.consumerKey, API_KEY_PATTERN);
        assert.match(issued.credential.keyId, /^key_[0-9A-Za-z]{16}$/);
        assert.equal(issued.credential.keyHash, hashKey(issued.consumerKey));
        assert.ok(verifySecret(issued.consumerSecret!, issued.credential.secretHash!));
        assert.equal(issued.credential.expiresAt, '2030-01-01T00:00:00.000Z');
        assert.deepEqual(await db.credentials.findByKey(issued.consumerKey), issued.credential);
        assert.equal(await db.credentials.findByKey(`${issued.consumerKey}x`), undefined);

        const approved = await db.credentials.setProductStatus(issued.credential.keyId, 'silver', 'approved');
        assert.deepEqual(approved.apiProducts.map((g) => g.status), ['approved', 'approved']);
        await assert.rejects(db.credentials.setProductStatus(issued.credential.keyId, 'bronze', 'approved'), NotFoundError);
        assert.equal((await db.credentials.setStatus(issued.credential.keyId, 'revoked')).status, 'revoked');

        const imported = await db.credentials.issue({ appId: app.id, consumerKey: 'legacy-key-123', consumerSecret: null });
        assert.equal(imported.credential.secretHash, null);
        await assert.rejects(db.credentials.issue({ appId: app.id, consumerKey: 'legacy-key-123' }), ConflictError);
        await assert.rejects(db.credentials.issue({ appId: 'no-such-app' }), NotFoundError);
        const listed = await db.credentials.listForApp(app.id);
        assert.deepEqual(new Set(listed.items.map((c) => c.keyId)), new Set([issued.credential.keyId, imported.credential.keyId]));
      });

      test('deleting a product removes its grants from every key, so a product created later under its name starts without them', async () => {
        const product = unique('doomed');
        const kept = unique('kept');
        for (const name of [product, kept]) await db.products.create({ name, approvalType: 'auto' });
        const dev = await db.developers.create({ email: `${unique('grants')}@example.com` });
        const app = await db.apps.create(dev.id, { name: 'app' });
        const both = await db.credentials.issue({ appId: app.id, apiProducts: [{ apiproduct: product, status: 'approved' }, { apiproduct: kept, status: 'approved' }] });
        const other = await db.credentials.issue({ appId: app.id, apiProducts: [{ apiproduct: kept, status: 'approved' }] });
        await db.withActor('admin:carol').products.delete(product);
        // Before: the grant stayed, approved, and the key had the new product below at once, without its approval.
        await db.products.create({ name: product, approvalType: 'manual' });
        assert.deepEqual((await db.credentials.get(both.credential.keyId)).apiProducts, [{ apiproduct: kept, status: 'approved' }]);
        assert.deepEqual(await db.credentials.get(other.credential.keyId), other.credential);
        const audit = await db.audit.list({ resourceType: 'credential', resourceName: both.credential.keyId });
        assert.deepEqual([audit.items[0].action, audit.items[0].actor, audit.items[0].detail], ['update', 'admin:carol', { removedApiProduct: product, reason: 'the product was deleted' }]);
        assert.equal((await db.audit.list({ resourceType: 'credential', resourceName: other.credential.keyId })).items.length, 1, 'only its issue');
      });

      test('a product deleted while a key is being granted it: the delete waits for the grant and removes it, or the grant finds no product', async () => {
        const product = unique('raced');
        await db.products.create({ name: product, approvalType: 'auto' });
        const dev = await db.developers.create({ email: `${unique('race')}@example.com` });
        const app = await db.apps.create(dev.id, { name: 'app' });
        let deleting: Promise<unknown> | undefined;
        const issued = await db.transaction(async (tx) => {
          const found = await tx.products.findToGrant(product);
          assert.ok(found);
          // On PostgreSQL the delete waits for this transaction; it went through before and left the grant dangling.
          deleting = db.products.delete(product);
          await new Promise((r) => setTimeout(r, 200));
          return tx.credentials.issue({ appId: app.id, apiProducts: [{ apiproduct: product, status: 'approved' }] });
        });
        await deleting;
        assert.equal(await db.products.find(product), undefined);
        assert.deepEqual((await db.credentials.get(issued.credential.keyId)).apiProducts, [], 'no grant of a product that is gone');
      });

      test('a product gone from the files keeps its grants for when it comes back; the admin API creating one under that name drops them', async () => {
        const name = unique('filed');
        await db.products.apply({ name, owner: 'file' });
        const dev = await db.developers.create({ email: `${unique('filed')}@example.com` });
        const app = await db.apps.create(dev.id, { name: 'app' });
        const { credential } = await db.credentials.issue({ appId: app.id, apiProducts: [{ apiproduct: name, status: 'approved' }] });
        // Out of the files for a moment (a file being rewritten), then back: the subscribers keep their access.
        await db.products.delete(name, { keepGrants: true });
        await db.products.apply({ name, owner: 'file' });
        assert.deepEqual((await db.credentials.get(credential.keyId)).apiProducts, [{ apiproduct: name, status: 'approved' }]);
        // Out again; then a product of that name made through the admin API is a new one, without them.
        await db.products.delete(name, { keepGrants: true });
        await db.products.create({ name, approvalType: 'manual' });
        assert.deepEqual((await db.credentials.get(credential.keyId)).apiProducts, []);
        const audit = await db.audit.list({ resourceType: 'credential', resourceName: credential.keyId });
        assert.deepEqual(audit.items[0].detail, { removedApiProduct: name, reason: 'a new product was created under its name' });
      });

      test('deleting a developer removes its apps and their keys', async () => {
        const dev = await db.developers.create({ email: `${unique('gone')}@example.com` });
        const app = await db.apps.create(dev.id, { name: 'app' });
        const { credential } = await db.credentials.issue({ appId: app.id });
        await db.developers.delete(dev.email);
        assert.equal(await db.apps.find(app.id), undefined);
        assert.equal(await db.credentials.find(credential.keyId), undefined);
        await assert.rejects(db.developers.delete(dev.email), NotFoundError);
      });

      test('deleting an app or a developer writes a delete row for each app and key it takes with it', async () => {
        const dev = await db.developers.create({ email: `${unique('cascade')}@example.com` });
        const [first, second] = [await db.apps.create(dev.id, { name: 'first' }), await db.apps.create(dev.id, { name: 'second' })];
        const firstKey = (await db.credentials.issue({ appId: first.id })).credential.keyId;
        const secondKeys = [(await db.credentials.issue({ appId: second.id })).credential.keyId, (await db.credentials.issue({ appId: second.id })).credential.keyId];
        const admin = db.withActor('admin:dora');
        await admin.apps.delete(first.id);
        await admin.developers.delete(dev.email);
        // Before, only the app's and the developer's own rows: the trail showed these keys issued and never removed.
        const latest = async (resourceType: string, resourceName: string) => {
          const [row] = (await db.audit.list({ resourceType, resourceName })).items;
          return [row.action, row.actor, row.detail];
        };
        assert.deepEqual(await latest('credential', firstKey), ['delete', 'admin:dora', { appId: first.id, reason: 'app deleted' }]);
        assert.deepEqual(await latest('app', first.id), ['delete', 'admin:dora', { developerId: dev.id, name: 'first' }]);
        assert.deepEqual(await latest('app', second.id), ['delete', 'admin:dora', { developerId: dev.id, name: 'second', reason: 'developer deleted' }]);
        for (const keyId of secondKeys) assert.deepEqual(await latest('credential', keyId), ['delete', 'admin:dora', { appId: second.id, reason: 'developer deleted' }]);
      });
    });

    describe('key-value maps', () => {
      test('put, get, list, delete; values never reach the audit log', async () => {
        const mapName = unique('map');
        await db.kvm.put({ scope: 'environment', mapName, key: 'k1', value: 'secret-value', encrypted: true });
        await db.kvm.put({ scope: 'environment', mapName, key: 'k1', value: 'secret-value-2', encrypted: true });
        await db.kvm.put({ scope: 'apiproduct:gold', mapName, key: 'k1', value: 'other scope' });
        const entry = await db.kvm.get('environment', mapName, 'k1');
        assert.equal(entry?.value, 'secret-value-2');
        assert.equal(entry?.encrypted, true);
        assert.equal((await db.kvm.get('apiproduct:gold', mapName, 'k1'))?.encrypted, false);
        const audit = await db.audit.list({ resourceType: 'kvm', resourceName: `environment/${mapName}/k1` });
        assert.equal(audit.items.length, 2);
        assert.ok(!JSON.stringify(audit.items).includes('secret-value'));
        await db.kvm.delete('environment', mapName, 'k1');
        await assert.rejects(db.kvm.delete('environment', mapName, 'k1'), NotFoundError);
        assert.equal(await db.kvm.deleteMap('apiproduct:gold', mapName), 1);
        assert.equal(await db.kvm.deleteMap('apiproduct:gold', mapName), 0);
      });
    });

    describe('pagination', () => {
      test('pages through a listing with opaque tokens', async () => {
        const dev = await db.developers.create({ email: `${unique('pages')}@example.com` });
        const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
        for (const name of [...names].reverse()) await db.apps.create(dev.id, { name });
        const seen: string[] = [];
        let pageToken: string | undefined;
        let pages = 0;
        do {
          const page = await db.apps.list({ developerId: dev.id }, { pageSize: 3, pageToken });
          seen.push(...page.items.map((a) => a.name));
          pageToken = page.nextPageToken;
          pages++;
        } while (pageToken);
        assert.deepEqual(seen, names);
        assert.equal(pages, 3);
        const exact = await db.apps.list({ developerId: dev.id }, { pageSize: 7 });
        assert.equal(exact.nextPageToken, undefined);
      });

      test('composite sort keys (manifests by kind, name)', async () => {
        const prefix = unique('K');
        for (const kind of [`${prefix}-a`, `${prefix}-b`]) {
          for (const name of ['x', 'y']) await db.manifests.apply({ kind, name, apiVersion: 'v1', spec: {} });
        }
        const first = await db.manifests.list({}, { pageSize: 1000 });
        const mine = first.items.filter((m) => m.kind.startsWith(prefix)).map((m) => `${m.kind}/${m.name}`);
        assert.deepEqual(mine, [`${prefix}-a/x`, `${prefix}-a/y`, `${prefix}-b/x`, `${prefix}-b/y`]);
        const all: string[] = [];
        let pageToken: string | undefined;
        do {
          const page = await db.manifests.list({}, { pageSize: 2, pageToken });
          all.push(...page.items.map((m) => `${m.kind}/${m.name}`));
          pageToken = page.nextPageToken;
        } while (pageToken);
        assert.deepEqual(all, first.items.map((m) => `${m.kind}/${m.name}`));
      });

      test('a forged token is refused', async () => {
        await assert.rejects(db.products.list({ pageToken: 'not-a-token' }), InvalidPageTokenError);
        const wrongShape = Buffer.from(JSON.stringify(['a', 'b'])).toString('base64url');
        await assert.rejects(db.products.list({ pageToken: wrongShape }), InvalidPageTokenError);
        // Dates Date.parse takes and PostgreSQL refuses (a 500 there): each a 400 on every backend.
        for (const at of ['2020-02-30T00:00:00.000Z', '0000-01-01T00:00:00.000Z', '2020-01-01T24:00:00.000Z']) {
          const token = Buffer.from(JSON.stringify([at, 'k'])).toString('base64url');
          await assert.rejects(db.credentials.listForApp('no-app', { pageToken: token }), InvalidPageTokenError, at);
        }
      });
    });

    describe('audit log and transactions', () => {
      test('each change writes an audit row with its actor, newest first', async () => {
        const name = unique('audited');
        await db.withActor('admin:alice').products.create({ name });
        await db.withActor('admin:bob').products.update(name, { description: 'x' });
        await db.products.delete(name);
        const { items } = await db.audit.list({ resourceType: 'apiproduct', resourceName: name });
        assert.deepEqual(
          items.map((e) => [e.action, e.actor]),
          [
            ['delete', 'system'],
            ['update', 'admin:bob'],
            ['create', 'admin:alice'],
          ],
        );
        assert.deepEqual(items[1].detail, { fields: ['description'] });
      });

      test('a revoke and an approve of a developer or an app are told apart by the status their rows record', async () => {
        const dev = await db.developers.create({ email: `${unique('Status')}@Example.com` });
        const app = await db.apps.create(dev.id, { name: 'switched' });
        await db.developers.setStatus(dev.id, 'inactive');
        await db.developers.setStatus(dev.id, 'active');
        await db.apps.setStatus(app.id, 'revoked');
        await db.apps.setStatus(app.id, 'approved');
        const details = async (resourceType: string, resourceName: string) =>
          (await db.audit.list({ resourceType, resourceName })).items.filter((e) => e.action === 'update').map((e) => e.detail);
        assert.deepEqual(await details('developer', dev.email), [
          { id: dev.id, fields: ['status'], status: 'active' },
          { id: dev.id, fields: ['status'], status: 'inactive' },
        ]);
        assert.deepEqual(await details('developer', dev.email.toLowerCase()), await details('developer', dev.email), 'found by the email in any case');
        assert.deepEqual(await details('app', app.id), [
          { fields: ['status'], status: 'approved' },
          { fields: ['status'], status: 'revoked' },
        ]);
      });

      test('a failed transaction leaves neither data, audit rows nor change events', async () => {
        const events: ChangeEvent[] = [];
        const unsubscribe = db.onChange((e) => events.push(e));
        const dev = await db.developers.create({ email: `${unique('tx')}@example.com` });
        events.length = 0;
        await assert.rejects(
          db.transaction(async (tx) => {
            const app = await tx.apps.create(dev.id, { name: 'rolled-back' });
            await tx.credentials.issue({ appId: app.id });
            await tx.apps.create(dev.id, { name: 'rolled-back' });
          }),
          ConflictError,
        );
        assert.equal(await db.apps.findByName(dev.id, 'rolled-back'), undefined);
        assert.equal((await db.audit.list({ resourceType: 'app' }, { pageSize: 1000 })).items.filter((e) => e.detail.developerId === dev.id).length, 0);
        assert.deepEqual(events, []);

        const { app, key } = await db.withActor('admin').transaction(async (tx) => {
          const created = await tx.apps.create(dev.id, { name: 'committed' });
          const issued = await tx.credentials.issue({ appId: created.id });
          return { app: created, key: issued.consumerKey };
        });
        assert.equal((await db.credentials.findByKey(key))?.appId, app.id);
        // Read again: assert.deepEqual(events, []) above narrowed it to never[].
        const heard: ChangeEvent[] = events;
        assert.deepEqual(heard.map(({ identityRows: _rows, ...event }) => event), [{ resourceTypes: ['app', 'credential'], identity: { appIds: [app.id], developerIds: [] }, origin: 'local' }]);
        assert.deepEqual(heard[0]?.identityRows?.credentials.map((c) => c.appId), [app.id]);
        unsubscribe();
      });
    });

    test('loadSnapshot returns everything the hot path needs', async () => {
      const fresh = await backend.create();
      const store = await fresh.open();
      try {
        await store.products.create({ name: 'gold' });
        await store.operationSets.apply({ name: 'chat', spec: { apiProductRefs: [{ name: 'gold' }] } });
        await store.manifests.apply({ kind: 'APIMExtensionPolicy', name: 'ext', apiVersion: 'apim.googleapis.com/v1', spec: {} });
        const dev = await store.developers.create({ email: 'snap@example.com' });
        const app = await store.apps.create(dev.id, { name: 'app' });
        const { credential } = await store.credentials.issue({ appId: app.id, apiProducts: [{ apiproduct: 'gold', status: 'approved' }] });
        await store.kvm.put({ scope: 'environment', mapName: 'm', key: 'k', value: 'v' });
        const snapshot = await store.loadSnapshot();
        assert.deepEqual(snapshot.products.map((p) => p.name), ['gold']);
        assert.deepEqual(snapshot.operationSets.map((s) => s.name), ['chat']);
        assert.deepEqual(snapshot.manifests.map((m) => m.name), ['ext']);
        assert.deepEqual(snapshot.developers, [dev]);
        assert.deepEqual(snapshot.apps, [app]);
        assert.deepEqual(snapshot.credentials, [credential]);
        assert.equal(snapshot.kvmEntries.length, 1);
      } finally {
        await store.close();
        await fresh.dispose();
      }
    });
  });
}
