// /v1/developers/{email}/apps/{app}/keys: an app's keys — listed without secrets, issued or imported, approved,
// revoked, deleted, and approved or revoked per API product.
import { AccessTokens, type CredentialStatus } from '../store/index.js';
import type { AddRoute, ApimAdminDeps } from './admin-deps.js';
import { storeFor } from './admin-deps.js';
import { actionQuery, PAGE_QUERY, readBody } from './admin-input.js';
import { keyBody } from './admin-schemas.js';
import { findApp, findKey, lockApp } from './developer-app.js';
import { expiresAfter, grantsFor } from './new-key.js';
import { credentialResource, issuedCredentialResource, pageBody } from './resource-shapes.js';

const KEY_ACTIONS: Record<string, CredentialStatus> = { approve: 'approved', revoke: 'revoked' };

const KEYS = '/v1/developers/{email}/apps/{app}/keys';

export function registerKeyRoutes(add: AddRoute, deps: ApimAdminDeps): void {
  const { db } = deps;
  const tokens = new AccessTokens(db);

  add('GET', KEYS, async (req, page) => {
    const app = await findApp(db, req.params);
    return { body: pageBody(await db.credentials.listForApp(app.id, page), credentialResource) };
  }, { query: PAGE_QUERY });

  add('POST', KEYS, async (req) => {
    const body = await readBody(req, keyBody);
    const issued = await storeFor(deps, req).transaction(async (tx) => {
      const app = await lockApp(tx, req.params);
      // Without a list, the new key gets the products the app's keys hold (approvals are per key, so they start over).
      const products = body.apiProducts ?? (await tx.credentials.productsOfApp(app.id));
      return tx.credentials.issue({
        appId: app.id,
        apiProducts: await grantsFor(tx, products, 'apiProducts'),
        expiresAt: expiresAfter(body.expiresInSeconds === undefined ? undefined : body.expiresInSeconds * 1000),
        consumerKey: body.consumerKey,
        // An imported key without a secret stays without one, rather than getting a secret nobody asked for.
        consumerSecret: body.consumerKey === undefined ? undefined : (body.consumerSecret ?? null),
      });
    });
    return { status: 201, body: issuedCredentialResource(issued) };
  });

  add('GET', `${KEYS}/{keyId}`, async (req) => {
    const app = await findApp(db, req.params);
    return { body: credentialResource(await findKey(db, app, req.params.keyId)) };
  });

  add('POST', `${KEYS}/{keyId}`, async (req, { action }) => {
    const key = await storeFor(deps, req).transaction(async (tx) => {
      await findKey(tx, await findApp(tx, req.params), req.params.keyId);
      return tx.credentials.setStatus(req.params.keyId, action);
    });
    return { body: credentialResource(key) };
  }, { query: actionQuery(KEY_ACTIONS) });

  add('DELETE', `${KEYS}/{keyId}`, async (req) => {
    const store = storeFor(deps, req);
    // Its OAuth tokens first, in chunks outside the key's transaction (see deleteOwnedBy); only once the path names it.
    await findKey(store, await findApp(store, req.params), req.params.keyId);
    await tokens.deleteOwnedBy({ keyId: req.params.keyId });
    const key = await store.transaction(async (tx) => {
      await findKey(tx, await findApp(tx, req.params), req.params.keyId);
      return tx.credentials.delete(req.params.keyId);
    });
    return { body: credentialResource(key) };
  });

  add('POST', `${KEYS}/{keyId}/apiproducts/{product}`, async (req, { action }) => {
    const key = await storeFor(deps, req).transaction(async (tx) => {
      await findKey(tx, await findApp(tx, req.params), req.params.keyId);
      return tx.credentials.setProductStatus(req.params.keyId, req.params.product, action);
    });
    return { body: credentialResource(key) };
  }, { query: actionQuery(KEY_ACTIONS) });
}
