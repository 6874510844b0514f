// The tenant a request belongs to: with API keys its app, else (for flow-control fairness alone) the fairness id it
// sends, in a namespace of its own. One id for what the gateway keeps per tenant — the flow-control fairness id, a
// stored response's owner — so they cannot drift apart.
import type { RequestContext } from './context.js';
import { FAIRNESS_HEADER } from './resolve-model.js';

/** The tenant id of an app. */
export const appTenant = (appId: string): string => `app:${appId}`;

/**
 * The tenant API keys identified for the request (this gateway's, or a tollgate extension's that checked them);
 * undefined without keys (or before they are checked).
 */
export function keyedTenant(ctx: RequestContext): string | undefined {
  const app = ctx.apim?.key?.appId ?? ctx.extensionIdentity?.appId;
  return app === undefined ? undefined : appTenant(app);
}

/**
 * The flow-control tenant: the caller's app with API keys (a header the client chooses let it take a turn per request
 * by sending a new id each time: 9 of the first 10 dispatches against one honest tenant), else its
 * x-gateway-inference-fairness-id under a prefix of its own, so that an anonymous client naming `app:<appId>` cannot
 * join that app's turns where keyed and anonymous requests share a pool. None or an empty one is the one default
 * tenant, as the Inference Extension's `default-flow`.
 */
export function fairnessTenant(ctx: RequestContext): string {
  const keyed = keyedTenant(ctx);
  if (keyed !== undefined) return keyed;
  const id = ctx.headers[FAIRNESS_HEADER];
  return typeof id === 'string' && id !== '' ? `header:${id}` : '';
}
