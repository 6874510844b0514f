import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manifestOf } from '../config/manifest.js';
import { openDatabase } from '../store/index.js';
import { syncFileManifests } from './file-manifests.js';

test('objects the admin API created that a file now declares are replaced and named, once', async () => {
  const db = await openDatabase('sqlite::memory:');
  try {
    await db.products.create({ name: 'gold', displayName: 'Gold (admin)' });
    await db.operationSets.apply({ name: 'gold-ops', spec: {} });
    await db.products.create({ name: 'silver' });
    const files = [
      manifestOf('APIProduct', 'gold', { displayName: 'Gold (file)' }),
      manifestOf('APIOperationSet', 'gold-ops', { apiProductRefs: [{ name: 'gold' }] }),
      manifestOf('APIProduct', 'bronze', { displayName: 'Bronze' }),
    ];
    assert.deepEqual(await syncFileManifests(db, files), ['APIProduct/gold', 'APIOperationSet/gold-ops']);
    const gold = await db.products.get('gold');
    assert.deepEqual([gold.displayName, gold.owner], ['Gold (file)', 'file']);
    assert.equal((await db.products.get('silver')).owner, 'api', 'an object no file declares is left alone');
    assert.deepEqual(await syncFileManifests(db, files), [], 'already the files’: nothing to say again');
  } finally {
    await db.close();
  }
});
