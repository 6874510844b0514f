// The client's Cache-Control as caches honour it: `no-cache` skips the lookup (the fresh answer is still stored),
// `no-store` keeps the exchange out of the cache altogether.
import type { RequestContext } from '../../gateway/context.js';

export interface ClientDirectives {
  lookup: boolean;
  store: boolean;
}

const DEFAULT: ClientDirectives = { lookup: true, store: true };

export function clientDirectives(ctx: RequestContext): ClientDirectives {
  const cc = ctx.headers['cache-control'];
  if (typeof cc !== 'string') return DEFAULT;
  const noStore = cc.includes('no-store');
  return { lookup: !noStore && !cc.includes('no-cache'), store: !noStore };
}
