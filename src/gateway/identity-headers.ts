// Who is calling, as API management found it, for the servers behind the gateway: the same headers whether tollgate
// proxies the request itself or answers Envoy over ext_proc. A client's own copies of them never pass.
import type { RequestContext } from './context.js';

export const IDENTITY_HEADERS = ['x-tollgate-app-id', 'x-tollgate-app', 'x-tollgate-developer', 'x-tollgate-product'] as const;

/** Each identity header with its value for this request, or undefined when it is not known (no key, no product). */
export function identityHeaderValues(ctx: RequestContext): [name: string, value: string | undefined][] {
  const key = ctx.apim?.key;
  const values = key ? [key.appId, key.appName, key.developerId, ctx.apim?.product?.name] : [];
  return IDENTITY_HEADERS.map((name, i) => [name, values[i]]);
}
