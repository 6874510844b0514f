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

test('an object of another kind the admin API stored under a name a file declares is removed and named (the files are read for it)', async () => {
  const db = await openDatabase('sqlite::memory:');
  try {
    const V = 'apim.googleapis.com/v1';
    await db.manifests.apply({ kind: 'SpikeArrest', name: 'sa', apiVersion: V, spec: { rate: '1000ps' } });
    await db.manifests.apply({ kind: 'SpikeArrest', name: 'other', apiVersion: V, spec: { rate: '1ps' } });
    await db.manifests.apply({ kind: 'KeyValueMap', name: 'settings', apiVersion: V, spec: {} });
    await db.kvm.put({ scope: 'environment', mapName: 'settings', key: 'k', value: 'v' });
    const files = [manifestOf('SpikeArrest', 'sa', { rate: '1pm' }), manifestOf('KeyValueMap', 'settings', {}), manifestOf('ApimTemplate', 't', { templates: [{ policies: [{ kind: 'SpikeArrest', name: 'sa' }] }] })];
    assert.deepEqual(await syncFileManifests(db, files), ['SpikeArrest/sa', 'KeyValueMap/settings']);
    assert.equal(await db.manifests.find('SpikeArrest', 'sa'), undefined);
    assert.equal(await db.manifests.find('KeyValueMap', 'settings'), undefined);
    assert.equal((await db.kvm.get('environment', 'settings', 'k'))?.value, 'v', "the map's entries are the file's map's now");
    assert.equal((await db.manifests.get('SpikeArrest', 'other')).owner, 'api', 'an object no file declares is left alone');
    assert.deepEqual(await syncFileManifests(db, files), []);
  } finally {
    await db.close();
  }
});
