// What the API-management admin routes need from the gateway, and the store view each request writes through.
import type { Manifest } from '../config/manifest.js';
import type { z } from 'zod';
import type { AdminRequest, AdminResponse } from '../gateway/admin-router.js';
import type { Database, StoreView } from '../store/index.js';
import { actorOf } from './request-actor.js';

export interface ApimAdminDeps {
  db: Database;
  /** Whether a --config file declares this object (`kind` as in manifests, e.g. `APIProduct`); those are read-only here. */
  fileOwned: (kind: string, name: string) => boolean;
  /** The manifests --config files declare now, so apply checks template rules against them too. */
  fileManifests?: () => readonly Manifest[];
  /**
   * What the policy engine would refuse to build from this store view (an apply's uncommitted writes), and, given the
   * manifests before the change (policyManifests), templates the change would widen to every request; [] when none.
   */
  compileProblems?: (store: StoreView, before?: readonly Manifest[]) => Promise<string[]>;
  /** The manifests the policy engine reads from this store view (with the files'). */
  policyManifests?: (store: StoreView) => Promise<readonly Manifest[]>;
  /** Resolves once this replica serves what the store holds now (api-management.ts settled()). */
  settled?: () => Promise<void>;
}

/** A route's handler, given its query parameters as read with the route's `query` shape. */
export type RouteHandler<Q> = (req: AdminRequest, query: Q) => AdminResponse | Promise<AdminResponse>;

/**
 * `query` names every query parameter the route takes (admin-input.ts: PAGE_QUERY, flagsQuery, actionQuery): any
 * other is a 400 before the handler runs, so no route (GET included, and one added later) ignores one. `open` and
 * `yaml` as AdminRouter.add takes them.
 */
export type AddRoute = <S extends z.ZodRawShape = Record<string, never>>(
  method: string,
  pattern: string,
  handler: RouteHandler<z.output<z.ZodObject<S>>>,
  opts?: { yaml?: boolean; query?: S; open?: boolean },
) => void;

/** The store, recording the request's actor in the audit rows of whatever it changes. */
export function storeFor(deps: ApimAdminDeps, req: AdminRequest): StoreView {
  return deps.db.withActor(actorOf(req));
}
