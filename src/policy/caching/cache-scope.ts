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
