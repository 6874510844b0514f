// CORS: answers browser preflights at once (before credentials, which browsers never send on a preflight) and adds
// the allow headers to every answer for an allowed origin; a disallowed origin gets no CORS headers.
import { corsSpec } from '../../../config/apim-kinds.js';
import { commaList } from '../../../lib/comma-list.js';
import type { RequestContext } from '../../../gateway/context.js';
import { policyFault } from '../../../gateway/errors.js';
import type { Policy, PolicyFactory } from '../../types.js';
import { compileOrigins } from './origin-matcher.js';

export const CORS = 'cors';

/** tollgate's: Apigee's CORS policy leaves a refused preflight without CORS headers; tollgate also says why. */
export const CORS_FAULTS = {
  originNotAllowed: 'steps.cors.OriginNotAllowed',
  methodNotAllowed: 'steps.cors.MethodNotAllowed',
  headersNotAllowed: 'steps.cors.HeadersNotAllowed',
} as const;

const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/**
 * @example cors('web-app', { allowOrigins: ['https://chat.example.com', 'https://*.example.dev'], allowCredentials: true }, deps)
 */
export const cors: PolicyFactory = (name, spec) => {
  const s = corsSpec.parse(spec);
  const origins = compileOrigins(s.allowOrigins);
  // `null` is what sandboxed iframes and data: URLs send: any site can forge it, so it never gets credentials.
  const allowed = s.allowCredentials ? (origin: string) => origin !== 'null' && origins.matches(origin) : origins.matches;
  const methods = new Set(s.allowMethods);
  const anyMethod = methods.has('*');
  const headers = new Set(s.allowHeaders);
  const anyHeader = headers.has('*');
  // Only `*` (never with credentials: corsSpec) is the same for every origin; otherwise the answer names the origin,
  // and every answer, an unallowed or absent origin's too, varies on it so a shared cache cannot serve one to another.
  const echo = !origins.any;
  const allowMethods = s.allowMethods.join(', ');
  const allowHeaders = s.allowHeaders.join(', ');
  const expose = s.exposeHeaders.join(', ');
  const maxAge = s.maxAge >= 0 ? String(s.maxAge) : undefined;

  const originHeaders = (origin: string): Record<string, string> => ({
    'access-control-allow-origin': echo ? origin : '*',
    ...(s.allowCredentials && { 'access-control-allow-credentials': 'true' }),
  });

  const preflight = (ctx: RequestContext, origin: string, method: string): void => {
    if (!allowed(origin)) throw policyFault(403, CORS_FAULTS.originNotAllowed, `Origin ${origin} is not allowed`);
    if (!anyMethod && !methods.has(method.toUpperCase())) throw policyFault(403, CORS_FAULTS.methodNotAllowed, `Method ${method} is not allowed`);
    const asked = first(ctx.headers['access-control-request-headers']);
    const requested = commaList(asked).map((h) => h.toLowerCase());
    const refused = anyHeader ? undefined : requested.find((h) => !headers.has(h));
    if (refused) throw policyFault(403, CORS_FAULTS.headersNotAllowed, `Header ${refused} is not allowed`);
    ctx.directResponse = {
      status: 204,
      headers: {
        ...originHeaders(origin),
        // `*` answers with what was asked, so credentialed requests (where `*` is literal) work too.
        'access-control-allow-methods': anyMethod ? method : allowMethods,
        'access-control-allow-headers': anyHeader ? requested.join(', ') : allowHeaders,
        ...(maxAge !== undefined && { 'access-control-max-age': maxAge }),
      },
      body: '',
    };
  };

  return {
    type: CORS,
    name,
    intercept(ctx, state) {
      // The answer's CORS headers are this policy's alone: a model server's own (vLLM's allow every origin by default)
      // would undo the allow-list for the origins it refuses (header-values.ts drops them).
      state.corsDecided = true;
      if (echo) ctx.responseHeaders.vary = 'Origin';
      const origin = first(ctx.headers.origin);
      if (!origin) return;
      const method = first(ctx.headers['access-control-request-method']);
      if (ctx.method === 'OPTIONS' && method) return preflight(ctx, origin, method);
      if (!allowed(origin)) return;
      Object.assign(ctx.responseHeaders, originHeaders(origin));
      if (expose) ctx.responseHeaders['access-control-expose-headers'] = expose;
    },
  } satisfies Policy;
};
