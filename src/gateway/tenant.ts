// The tenant a request with API keys belongs to: its app. One id for what the gateway keeps per tenant — the
// flow-control fairness id, a stored response's owner — so they cannot drift apart.
import type { RequestContext } from './context.js';

/** The tenant id of an app. */
export const appTenant = (appId: string): string => `app:${appId}`;

/** The tenant API keys identified for the request; undefined without keys (or before they are checked). */
export function keyedTenant(ctx: RequestContext): string | undefined {
  const app = ctx.apim?.key?.appId;
  return app === undefined ? undefined : appTenant(app);
}
