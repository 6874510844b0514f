// The client's Cache-Control as caches honour it: `no-cache` (or `max-age=0`) skips the lookup (the fresh answer is
// still stored), `no-store` keeps the exchange out of the cache altogether.
import type { RequestContext } from '../../gateway/context.js';

export interface ClientDirectives {
  lookup: boolean;
  store: boolean;
}

const DEFAULT: ClientDirectives = { lookup: true, store: true };
/** delta-seconds of zero, in the token or (as recipients accept it) the quoted form. */
const ZERO_SECONDS = /^"?0+"?$/;

/**
 * Directives are comma-separated tokens, each `name` or `name=value`, names compared case-insensitively (RFC 9111
 * §5.2): `NO-STORE` is no-store, and `x-no-store-ish` is not. A request's `max-age=0` accepts no stored answer, which
 * is `no-cache` (§5.2.1.1).
 */
export function clientDirectives(ctx: RequestContext): ClientDirectives {
  const cc = ctx.headers['cache-control'];
  if (typeof cc !== 'string') return DEFAULT;
  let lookup = true;
  for (const directive of cc.split(',')) {
    const eq = directive.indexOf('=');
    const name = (eq === -1 ? directive : directive.slice(0, eq)).trim().toLowerCase();
    if (name === 'no-store') return { lookup: false, store: false };
    if (name === 'no-cache' || (name === 'max-age' && ZERO_SECONDS.test(directive.slice(eq + 1).trim()))) lookup = false;
  }
  return lookup ? DEFAULT : { lookup: false, store: true };
}
