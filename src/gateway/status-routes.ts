// The gateway's own admin routes: health, readiness and metrics (served from the start), and the fleet as the endpoint
// picker sees it.
import type { Registry } from 'prom-client';
import { PAGE_QUERY } from '../apim/admin-input.js';
import { routeAdder } from '../apim/admin-routes.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import { pageOfList } from '../store/index.js';
import { renderMetrics } from '../telemetry/exposition.js';
import { AdminError, type AdminResponse, type AdminRouter } from './admin-router.js';

export interface HealthRouteDeps {
  /** /readyz's answer: 503 until the gateway can serve. */
  readiness: () => AdminResponse;
  registry: Registry;
}

/**
 * Adds /healthz, /readyz and /metrics, which need no token. Added as every admin route is, so each refuses a query
 * parameter it does not take. They need nothing but the process: the admin port serves them while the store loads.
 * @example registerHealthRoutes(router, { readiness: () => ({ body: { ready: true } }), registry });
 */
export function registerHealthRoutes(router: AdminRouter, deps: HealthRouteDeps): void {
  const add = routeAdder(router);
  add('GET', '/healthz', () => ({ body: { status: 'ok' } }), { open: true });
  add('GET', '/readyz', () => deps.readiness(), { open: true });
  add('GET', '/metrics', async () => ({ text: await renderMetrics(deps.registry), contentType: deps.registry.contentType }), { open: true });
}

/**
 * Adds GET /v1/pools (a list, paginated by pool name) and /v1/pools/{name}.
 * @example registerPoolRoutes(gateway.admin, { picker: scheduler });
 */
export function registerPoolRoutes(router: AdminRouter, deps: { picker: Pick<Scheduler, 'view'> }): void {
  const add = routeAdder(router);
  add('GET', '/v1/pools', (_req, page) => ({ body: pageOfList(deps.picker.view(), (pool) => pool.name, page) }), { query: PAGE_QUERY });
  add('GET', '/v1/pools/{name}', (req) => {
    const view = deps.picker.view(req.params.name);
    if (!view) throw new AdminError(404, 'not_found', `No InferencePool "${req.params.name}"`);
    return { body: view };
  });
}
