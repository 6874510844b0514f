// The hot path's key view, replaced app by app as keys, apps and developers change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ApiProduct, App, Credential, Developer, OperationSet, PolicyRows, Snapshot } from '../store/index.js';
import { SnapshotIdentity } from './snapshot-identity.js';

const AT = '2026-01-01T00:00:00.000Z';
const developer = (id: string, status: Developer['status'] = 'active'): Developer => ({ id, email: `${id}@example.com`, firstName: '', lastName: '', userName: id, status, attributes: [], createdAt: AT, updatedAt: AT });
const app = (id: string, developerId: string, status: App['status'] = 'approved'): App => ({ id, developerId, name: id, status, attributes: [], callbackUrl: null, createdAt: AT, updatedAt: AT });
const key = (keyId: string, appId: string, status: Credential['status'] = 'approved'): Credential => ({
  keyId,
  appId,
  keyHash: `hash-${keyId}`,
  secretHash: null,
  status,
  apiProducts: [],
  issuedAt: AT,
  expiresAt: null,
  createdAt: AT,
});

function identity(developers: Developer[], apps: App[], credentials: Credential[], policies: PolicyRows = { products: [], operationSets: [], manifests: [] }): Promise<SnapshotIdentity> {
  const snapshot: Snapshot = { ...policies, developers, apps, credentials, kvmEntries: [], loadedAt: AT };
  return SnapshotIdentity.load(snapshot);
}

const product = (name: string, scopes: string[] = []): ApiProduct => ({
  name,
  displayName: name,
  description: '',
  approvalType: 'auto',
  attributes: [],
  operationSets: [],
  quota: null,
  scopes,
  owner: 'api',
  spec: {},
  contentHash: '',
  createdAt: AT,
  updatedAt: AT,
});
const operationSet = (name: string, products: string[]): OperationSet => ({ name, spec: { apiProductRefs: products.map((p) => ({ name: p })) }, owner: 'api', contentHash: '', createdAt: AT, updatedAt: AT });

test("an app's keys are replaced by what the store holds now; other apps' keys stay", async () => {
  const view = await identity([developer('d')], [app('a', 'd'), app('b', 'd')], [key('k1', 'a'), key('k2', 'a'), key('k3', 'b')]);
  view.replace({ appIds: ['a'], developerIds: [] }, { developers: [developer('d')], apps: [app('a', 'd', 'revoked')], credentials: [key('k1', 'a')] });
  assert.equal(view.findKeyByHash('hash-k1')?.appStatus, 'revoked');
  assert.equal(view.findKeyByHash('hash-k2'), undefined, 'a deleted key is gone');
  assert.equal(view.findKeyByHash('hash-k3')?.appStatus, 'approved');
  assert.equal(view.size, 2);
});

test("a key's change replaces that key alone: issued, altered or deleted, the app's other keys stay as they were", async () => {
  const view = await identity([developer('d')], [app('a', 'd')], [key('k1', 'a'), key('k2', 'a')]);
  const rows = (...credentials: Credential[]) => ({ developers: [developer('d')], apps: [app('a', 'd')], credentials });
  view.replace({ appIds: [], developerIds: [], keyIds: ['k3'] }, rows(key('k3', 'a')));
  view.replace({ appIds: [], developerIds: [], keyIds: ['k1'] }, rows(key('k1', 'a', 'revoked')));
  assert.equal(view.findKeyByHash('hash-k1')?.status, 'revoked');
  assert.equal(view.findKeyByHash('hash-k3')?.status, 'approved');
  view.replace({ appIds: [], developerIds: [], keyIds: ['k1'] }, { developers: [], apps: [], credentials: [] });
  assert.equal(view.findKeyByHash('hash-k1'), undefined, 'a deleted key is gone');
  assert.equal(view.findKeyByHash('hash-k2')?.status, 'approved');
  assert.equal(view.size, 2);
  // The app's keys, read whole later, include the ones issued alone.
  view.replace({ appIds: ['a'], developerIds: [] }, rows(key('k2', 'a')));
  assert.equal(view.findKeyByHash('hash-k3'), undefined);
  assert.equal(view.size, 1);
});

test("a developer's change replaces the keys of every app it had, deleted ones included", async () => {
  const view = await identity([developer('d'), developer('e')], [app('a', 'd'), app('b', 'd'), app('c', 'e')], [key('k1', 'a'), key('k2', 'b'), key('k3', 'c')]);
  // The developer deleted with its apps: the store holds none of them now.
  view.replace({ appIds: [], developerIds: ['d'] }, { developers: [], apps: [], credentials: [] });
  assert.equal(view.findKeyByHash('hash-k1'), undefined);
  assert.equal(view.findKeyByHash('hash-k2'), undefined);
  assert.equal(view.findKeyByHash('hash-k3')?.developerId, 'e');
  assert.equal(view.size, 1);
});

test('a key moved to another app (deleted, then imported) stays with the app that holds it, whichever change is read first', async () => {
  const view = await identity([developer('d')], [app('a', 'd'), app('b', 'd')], [key('k', 'a')]);
  // The import's change is read before the delete's: re-reading the old app must not take the key from the new one.
  view.replace({ appIds: ['b'], developerIds: [] }, { developers: [developer('d')], apps: [app('b', 'd')], credentials: [key('k2', 'b')].map((c) => ({ ...c, keyHash: 'hash-k' })) });
  view.replace({ appIds: ['a'], developerIds: [] }, { developers: [developer('d')], apps: [app('a', 'd')], credentials: [] });
  assert.equal(view.findKeyByHash('hash-k')?.appId, 'b');
  assert.equal(view.size, 1);
});

test("a policy change re-resolves every key's grants against the new products, keeping the keys' records", async () => {
  const granted = (keyId: string, ...grants: [string, Credential['status']][]): Credential => ({ ...key(keyId, 'a'), apiProducts: grants.map(([apiproduct, status]) => ({ apiproduct, status })) });
  const view = await identity([developer('d')], [app('a', 'd')], [granted('k1', ['p', 'approved'], ['q', 'approved']), granted('k2', ['p', 'pending'])], {
    products: [product('p', ['read']), product('q')],
    operationSets: [operationSet('s1', ['p'])],
    manifests: [],
  });
  const before = view.findKeyByHash('hash-k1');
  assert.deepEqual(before?.products.map((g) => [g.name, g.operationSets.map((s) => s.name), g.scopes]), [['p', ['s1'], ['read']], ['q', [], []]]);

  // q gains an operation set, p its scopes changed, then p is gone.
  view.relink({ products: [product('p', ['write']), product('q')], operationSets: [operationSet('s1', ['p']), operationSet('s2', ['q', 'p'])], manifests: [] });
  assert.equal(view.findKeyByHash('hash-k1'), before, 'the same record');
  assert.deepEqual(before?.products.map((g) => [g.name, g.operationSets.map((s) => s.name), g.scopes]), [['p', ['s1', 's2'], ['write']], ['q', ['s2'], []]]);
  assert.deepEqual(view.findKeyByHash('hash-k2')?.products.map((g) => [g.status, g.operationSets.map((s) => s.name)]), [['pending', ['s1', 's2']]]);

  view.relink({ products: [product('q')], operationSets: [operationSet('s2', ['q', 'p'])], manifests: [] });
  assert.deepEqual(before?.products.map((g) => [g.name, g.operationSets.map((s) => s.name), g.scopes]), [['p', [], []], ['q', ['s2'], []]], 'a deleted product grants nothing');
});

test('a big snapshot is loaded between event-loop turns, every key in it', async () => {
  const keys = Array.from({ length: 12_000 }, (_, i) => key(`k${i}`, 'a'));
  let turned = false;
  setImmediate(() => (turned = true));
  const view = await identity([developer('d')], [app('a', 'd')], keys);
  assert.ok(turned, 'requests were served while it was built');
  assert.equal(view.size, keys.length);
});
