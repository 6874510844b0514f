// deleteDocument on every backend: what an APIProduct takes with it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Database } from '../store/index.js';
import { DATABASE_BACKENDS, openForSuite } from '../store/test-databases.js';
import { deleteDocument } from './manifest-tables.js';

for (const backend of DATABASE_BACKENDS) {
  describe(backend.name, { skip: backend.skip }, () => {
    let db: Database;

    openForSuite(backend, (opened) => (db = opened));

    test("a deleted product's key-value map entries go with it (audited), so a product made again under its name starts without them", async () => {
      await db.products.create({ name: 'partner' });
      const entries = [
        { scope: 'apiproduct:partner', mapName: 'creds', key: 'token', value: 'partner-secret' },
        { scope: 'apiproduct:partner', mapName: 'limits', key: 'rpm', value: '10' },
        { scope: 'apiproduct:partner-2', mapName: 'creds', key: 'token', value: 'another product' },
        { scope: 'environment', mapName: 'creds', key: 'token', value: 'the environment' },
      ] as const;
      for (const e of entries) await db.kvm.put(e);
      await db.withActor('admin').transaction((tx) => deleteDocument(tx, 'APIProduct', 'partner'));
      assert.deepEqual(
        (await db.kvm.listAll()).map((e) => e.value),
        ['another product', 'the environment'],
      );
      const audited = (await db.audit.list({ resourceType: 'kvm' })).items.filter((a) => a.action === 'delete');
      assert.deepEqual(audited.map((a) => [a.resourceName, a.actor, a.detail]).sort(), [
        ['apiproduct:partner/creds', 'admin', { entries: 1 }],
        ['apiproduct:partner/limits', 'admin', { entries: 1 }],
      ]);
    });
  });
}
