// DELETE /v1/caches/{resource}/entries: empties one cache resource (what Apigee's InvalidateCache policy does, as an
// admin call), the entries of every configuration it was used under, with an audit row. Memory stores are this
// replica's; a Redis or PostgreSQL store's entries are every replica's.
import { AdminError, type AdminRouter } from '../gateway/admin-router.js';
import type { CacheResources } from '../policy/caching/cache-resources.js';
import { insertAuditRow } from '../store/audit-log.js';
import { CacheStoreUnavailableError } from '../store/caches/cache-store.js';
import type { Database } from '../store/index.js';
import { routeAdder } from './admin-routes.js';
import { actorOf } from './request-actor.js';

/** 503: the cache's Redis or PostgreSQL did not answer; what was already deleted stays deleted. */
export const CACHE_UNAVAILABLE = 'cache_unavailable';

export interface CacheRouteDeps {
  db: Database;
  caches: CacheResources;
}

/** @example registerCacheRoutes(gateway.admin, { db, caches: apim.caches }); */
export function registerCacheRoutes(router: AdminRouter, deps: CacheRouteDeps): void {
  routeAdder(router)('DELETE', '/v1/caches/{resource}/entries', async (req) => {
    const resource = req.params.resource;
    // Read before anything is deleted: a bad actor header refuses the purge.
    const actor = actorOf(req);
    let entries: number | undefined;
    try {
      entries = await deps.caches.purge(resource);
    } catch (err) {
      if (err instanceof CacheStoreUnavailableError) throw new AdminError(503, CACHE_UNAVAILABLE, `The store of cacheResource "${resource}" cannot be reached: ${err.message}`);
      throw err;
    }
    if (entries === undefined) throw new AdminError(404, 'not_found', `No ResponseCache or SemanticCacheLookup policy uses cacheResource "${resource}"`);
    // Nothing else changed, so nothing is announced to the replicas (a store write would reload their policies).
    await insertAuditRow(deps.db.boundedKysely, { at: new Date().toISOString(), actor, action: 'purge', resourceType: 'cache', resourceName: resource, detail: { entries } });
    return { body: { cacheResource: resource, entries } };
  });
}
