// The hot path's key view, replaced app by app as keys, apps and developers change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { App, Credential, Developer, Snapshot } from '../store/index.js';
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

function identity(developers: Developer[], apps: App[], credentials: Credential[]): SnapshotIdentity {
  const snapshot: Snapshot = { products: [], operationSets: [], manifests: [], developers, apps, credentials, kvmEntries: [], loadedAt: AT };
  return new SnapshotIdentity(snapshot);
}

test("an app's keys are replaced by what the store holds now; other apps' keys stay", () => {
  const view = identity([developer('d')], [app('a', 'd'), app('b', 'd')], [key('k1', 'a'), key('k2', 'a'), key('k3', 'b')]);
  view.replace({ appIds: ['a'], developerIds: [] }, { developers: [developer('d')], apps: [app('a', 'd', 'revoked')], credentials: [key('k1', 'a')] });
  assert.equal(view.findKeyByHash('hash-k1')?.appStatus, 'revoked');
  assert.equal(view.findKeyByHash('hash-k2'), undefined, 'a deleted key is gone');
  assert.equal(view.findKeyByHash('hash-k3')?.appStatus, 'approved');
  assert.equal(view.size, 2);
});

test("a developer's change replaces the keys of every app it had, deleted ones included", () => {
  const view = identity([developer('d'), developer('e')], [app('a', 'd'), app('b', 'd'), app('c', 'e')], [key('k1', 'a'), key('k2', 'b'), key('k3', 'c')]);
  // The developer deleted with its apps: the store holds none of them now.
  view.replace({ appIds: [], developerIds: ['d'] }, { developers: [], apps: [], credentials: [] });
  assert.equal(view.findKeyByHash('hash-k1'), undefined);
  assert.equal(view.findKeyByHash('hash-k2'), undefined);
  assert.equal(view.findKeyByHash('hash-k3')?.developerId, 'e');
  assert.equal(view.size, 1);
});

test('a key moved to another app (deleted, then imported) stays with the app that holds it, whichever change is read first', () => {
  const view = identity([developer('d')], [app('a', 'd'), app('b', 'd')], [key('k', 'a')]);
  // The import's change is read before the delete's: re-reading the old app must not take the key from the new one.
  view.replace({ appIds: ['b'], developerIds: [] }, { developers: [developer('d')], apps: [app('b', 'd')], credentials: [key('k2', 'b')].map((c) => ({ ...c, keyHash: 'hash-k' })) });
  view.replace({ appIds: ['a'], developerIds: [] }, { developers: [developer('d')], apps: [app('a', 'd')], credentials: [] });
  assert.equal(view.findKeyByHash('hash-k')?.appId, 'b');
  assert.equal(view.size, 1);
});
