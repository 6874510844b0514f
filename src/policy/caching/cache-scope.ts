// Whose answers a cache may share: one app's, one API product's, or (only when asked for) everybody's.
import type { RequestContext } from '../../gateway/context.js';
import type { ApimState } from '../types.js';

export type CacheScope = 'app' | 'product' | 'global';

/** The tenant part of a cache key; undefined when the request has no such tenant, and then nothing is cached. */
export type ScopeOf = (ctx: RequestContext, state: ApimState) => string | undefined;

const SCOPES: Record<CacheScope, ScopeOf> = {
  app: (_ctx, s) => (s.key ? `app:${s.key.appId}` : undefined),
  product: (_ctx, s) => (s.product ? `product:${s.product.name}` : undefined),
  global: () => 'global',
};

export function compileScope(scope: CacheScope): ScopeOf {
  return SCOPES[scope];
}

const WIDTH: Record<CacheScope, number> = { app: 0, product: 1, global: 2 };

/**
 * Whether the answer, as this request's response policies left it, may answer the other requests of a cache of
 * `scope`: not when a check could not judge it or a rewrite was skipped, nor beyond the scope its rewrites hold for.
 */
export function replayableIn(scope: CacheScope, state: ApimState): boolean {
  const within = state.answerSharedWithin;
  return !state.answerUnjudged && (within === undefined || WIDTH[scope] <= WIDTH[within]);
}
