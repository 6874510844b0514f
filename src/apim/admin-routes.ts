// The API-management admin API (Apigee's resource shapes) on the gateway's admin router.
import type { AdminRouter } from '../gateway/admin-router.js';
import type { AddRoute, ApimAdminDeps } from './admin-deps.js';
import { handled } from './admin-errors.js';
import { readQuery } from './admin-input.js';
import { registerAppRoutes } from './app-routes.js';
import { registerApplyRoute } from './apply-route.js';
import { registerAuditRoutes } from './audit-routes.js';
import { registerDeveloperRoutes } from './developer-routes.js';
import { registerKeyRoutes } from './key-routes.js';
import { KvmCipher } from './kvm-cipher.js';
import { registerKvmRoutes } from './kvm-routes.js';
import { registerManifestRoutes } from './manifest-routes.js';
import { registerOAuthRoutes } from './oauth-routes.js';
import { registerProductRoutes } from './product-routes.js';

export type { ApimAdminDeps } from './admin-deps.js';

/**
 * Adds routes to `router` as every admin route is added: each reads its query parameters with its `query` shape (any
 * other is a 400) and answers the store's errors as admin errors; given `settled`, a change (any method but GET) is
 * answered once it resolves.
 * @example routeAdder(gateway.admin)('GET', '/v1/pools', (_req, page) => ({ body: list(page) }), { query: PAGE_QUERY });
 */
export function routeAdder(router: AdminRouter, settled?: () => Promise<void>): AddRoute {
  return (method, pattern, handler, opts = {}) =>
    router.add(
      method,
      pattern,
      handled(async (req) => {
        // Without a `query` shape the route takes no parameters ({} stands for S then).
        const answer = await handler(req, readQuery(req, opts.query ?? ({} as NonNullable<typeof opts.query>)));
        if (method !== 'GET') await settled?.();
        return answer;
      }),
      { yaml: opts.yaml, open: opts.open },
    );
}

/**
 * Adds /v1/apply, /v1/delete, /v1/manifests, /v1/apiproducts, /v1/developers (with apps and keys), /v1/keyvaluemaps and /v1/audit. Every change goes through
 * the store, which writes the audit row in the same transaction.
 * @example registerApimAdminRoutes(gateway.admin, { db, fileOwned: (kind, name) => config.owns(kind, name) });
 */
export function registerApimAdminRoutes(router: AdminRouter, deps: ApimAdminDeps): void {
  // A change is answered once this replica serves it (the snapshot load takes tens of ms on PostgreSQL), so a client
  // that creates a key and uses it at once through the same gateway is not refused.
  const add = routeAdder(router, deps.settled);
  // Read once, for the routes that make maps and write entries alike.
  const kvmCipher = KvmCipher.fromEnv();
  registerApplyRoute(add, deps, kvmCipher);
  registerManifestRoutes(add, deps);
  registerProductRoutes(add, deps);
  registerDeveloperRoutes(add, deps);
  registerAppRoutes(add, deps);
  registerKeyRoutes(add, deps);
  registerAuditRoutes(add, deps);
  registerKvmRoutes(add, deps, kvmCipher);
  registerOAuthRoutes(add, deps);
}
