// /v1/developers/{email}/apps: developer apps, created with their first key (shown in that answer only).
import { AccessTokens, type App, type AppStatus, type StoreView } from '../store/index.js';
import type { AddRoute, ApimAdminDeps } from './admin-deps.js';
import { storeFor } from './admin-deps.js';
import { actionQuery, invalid, PAGE_QUERY, readBody } from './admin-input.js';
import { appBody, appReplaceBody } from './admin-schemas.js';
import { findApp, lockApp } from './developer-app.js';
import { expiresAfter, grantsFor } from './new-key.js';
import { appResource, credentialResource, issuedCredentialResource } from './resource-shapes.js';

const APP_ACTIONS: Record<string, AppStatus> = { approve: 'approved', revoke: 'revoked' };

/** The app with every one of its keys (the keys route pages through them; this answer is the whole app). */
async function withKeys(store: StoreView, app: App) {
  return appResource(app, (await store.credentials.listAllForApp(app.id)).map(credentialResource));
}

export function registerAppRoutes(add: AddRoute, deps: ApimAdminDeps): void {
  const { db } = deps;
  const tokens = new AccessTokens(db);

  add('GET', '/v1/developers/{email}/apps', async (req, query) => {
    const developer = await db.developers.get(req.params.email);
    const page = await db.apps.list({ developerId: developer.id }, query);
    const items = [];
    for (const app of page.items) items.push(await withKeys(db, app));
    return { body: { items, nextPageToken: page.nextPageToken } };
  }, { query: PAGE_QUERY });

  add('POST', '/v1/developers/{email}/apps', async (req) => {
    const body = await readBody(req, appBody);
    const created = await storeFor(deps, req).transaction(async (tx) => {
      const developer = await tx.developers.get(req.params.email);
      const grants = await grantsFor(tx, body.apiProducts, 'apiProducts');
      const app = await tx.apps.create(developer.id, { name: body.name, attributes: body.attributes, callbackUrl: body.callbackUrl });
      const issued = await tx.credentials.issue({ appId: app.id, apiProducts: grants, expiresAt: expiresAfter(body.keyExpiresIn) });
      return appResource(app, [issuedCredentialResource(issued)]);
    });
    return { status: 201, body: created };
  });

  add('GET', '/v1/developers/{email}/apps/{app}', async (req) => ({ body: await withKeys(db, await findApp(db, req.params)) }));

  add('PUT', '/v1/developers/{email}/apps/{app}', async (req) => {
    const body = await readBody(req, appReplaceBody);
    if (body.name !== undefined && body.name !== req.params.app) {
      throw invalid('Apps cannot be renamed', [{ path: 'name', message: `must be "${req.params.app}", as in the path` }]);
    }
    const updated = await storeFor(deps, req).transaction(async (tx) => {
      const app = await lockApp(tx, req.params);
      if (body.apiProducts !== undefined) await tx.credentials.regrantApp(app.id, await grantsFor(tx, body.apiProducts, 'apiProducts'));
      return withKeys(tx, await tx.apps.update(app.id, { attributes: body.attributes ?? [], callbackUrl: body.callbackUrl ?? null }));
    });
    return { body: updated };
  });

  add('POST', '/v1/developers/{email}/apps/{app}', async (req, { action }) => {
    const store = storeFor(deps, req);
    const app = await findApp(store, req.params);
    return { body: await withKeys(store, await store.apps.setStatus(app.id, action)) };
  }, { query: actionQuery(APP_ACTIONS) });

  add('DELETE', '/v1/developers/{email}/apps/{app}', async (req) => {
    const store = storeFor(deps, req);
    // Its keys' OAuth tokens first, in chunks outside the app's transaction (see deleteOwnedBy).
    await tokens.deleteOwnedBy({ appId: (await findApp(store, req.params)).id });
    const deleted = await store.transaction(async (tx) => {
      const app = await lockApp(tx, req.params);
      const keys = await tx.credentials.listAllForApp(app.id);
      return appResource(await tx.apps.delete(app.id), keys.map(credentialResource));
    });
    return { body: deleted };
  });
}
