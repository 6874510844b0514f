// /v1/developers: the people or teams that own apps, addressed by email as in Apigee.
import { AccessTokens, type DeveloperStatus } from '../store/index.js';
import type { AddRoute, ApimAdminDeps } from './admin-deps.js';
import { storeFor } from './admin-deps.js';
import { actionQuery, PAGE_QUERY, readBody } from './admin-input.js';
import { developerBody, developerReplaceBody } from './admin-schemas.js';
import { developerResource, pageBody } from './resource-shapes.js';

/** Apigee spells developer actions active/inactive; DESIGN.md's approve/revoke (as for apps and keys) works too. */
const DEVELOPER_ACTIONS: Record<string, DeveloperStatus> = { active: 'active', approve: 'active', inactive: 'inactive', revoke: 'inactive' };

export function registerDeveloperRoutes(add: AddRoute, deps: ApimAdminDeps): void {
  const { db } = deps;
  const tokens = new AccessTokens(db);

  add('GET', '/v1/developers', async (_req, page) => ({ body: pageBody(await db.developers.list(page), developerResource) }), { query: PAGE_QUERY });

  add('POST', '/v1/developers', async (req) => {
    const body = await readBody(req, developerBody);
    return { status: 201, body: developerResource(await storeFor(deps, req).developers.create(body)) };
  });

  add('GET', '/v1/developers/{email}', async (req) => ({ body: developerResource(await db.developers.get(req.params.email)) }));

  add('PUT', '/v1/developers/{email}', async (req) => {
    const body = await readBody(req, developerReplaceBody);
    const updated = await storeFor(deps, req).developers.update(req.params.email, {
      email: body.email,
      firstName: body.firstName ?? '',
      lastName: body.lastName ?? '',
      userName: body.userName ?? '',
      attributes: body.attributes ?? [],
    });
    return { body: developerResource(updated) };
  });

  add('POST', '/v1/developers/{email}', async (req, { action }) => {
    return { body: developerResource(await storeFor(deps, req).developers.setStatus(req.params.email, action)) };
  }, { query: actionQuery(DEVELOPER_ACTIONS) });

  add('DELETE', '/v1/developers/{email}', async (req) => {
    const store = storeFor(deps, req);
    // Its apps' keys' OAuth tokens first, in chunks outside the developer's transaction (see deleteOwnedBy).
    await tokens.deleteOwnedBy({ developerId: (await store.developers.get(req.params.email)).id });
    return { body: developerResource(await store.developers.delete(req.params.email)) };
  });
}
