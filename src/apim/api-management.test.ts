import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { manifestOf } from '../config/manifest.js';
import { silentLogger } from '../lib/logger.js';
import { ApiManagement } from './api-management.js';

const files = (keys: boolean, product: string) => [
  manifestOf('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: keys, targetRef: { name: 'tollgate' } }, 'apim.yaml'),
  manifestOf('APIProduct', product, { displayName: product }, 'apim.yaml'),
];

test('files handed over by a reload that was overtaken meanwhile are stored, but their policies are not installed', async (t) => {
  const apim = await ApiManagement.open({ db: 'sqlite::memory:', logger: silentLogger, registry: new Registry() }, files(true, 'gold'));
  t.after(() => apim.close());
  /** Whether the policies in force check keys. */
  const keysChecked = async () => {
    const extension = (await apim.policyManifests(apim.db)).find((m) => m.kind === 'APIMExtensionPolicy');
    return (extension?.spec as { defaultSecurityEnabled: boolean }).defaultSecurityEnabled;
  };

  // The newer reload hands its files over after this one: installing them here would put older policies in force.
  assert.equal(await apim.useFileManifests(files(false, 'silver'), AbortSignal.abort()), false);
  assert.equal(await keysChecked(), true);
  assert.deepEqual((await apim.db.products.listAll()).map((p) => p.name), ['silver'], 'the store holds them');

  assert.equal(await apim.useFileManifests(files(false, 'silver'), new AbortController().signal), true);
  assert.equal(await keysChecked(), false);
});
