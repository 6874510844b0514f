// CORS: answers browser preflights at once (before credentials, which browsers never send on a preflight) and adds
// the allow headers to every answer for an allowed origin; a disallowed origin gets no CORS headers.
import { corsSpec } from '../../../config/apim-kinds.js';
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
  const methods = new Set(s.allowMethods);
  const anyMethod = methods.has('*');
  const headers = new Set(s.allowHeaders);
  const anyHeader = headers.has('*');
  // With credentials a browser refuses `*`, so the origin is echoed instead (and caches must vary on it).
  const echo = !origins.any || s.allowCredentials;
  const allowMethods = s.allowMethods.join(', ');
  const allowHeaders = s.allowHeaders.join(', ');
  const expose = s.exposeHeaders.join(', ');
  const maxAge = s.maxAge >= 0 ? String(s.maxAge) : undefined;

  const originHeaders = (origin: string): Record<string, string> => ({
    'access-control-allow-origin': echo ? origin : '*',
    ...(echo && { vary: 'Origin' }),
    ...(s.allowCredentials && { 'access-control-allow-credentials': 'true' }),
  });

  const preflight = (ctx: RequestContext, origin: string, method: string): void => {
    if (!origins.matches(origin)) throw policyFault(403, CORS_FAULTS.originNotAllowed, `Origin ${origin} is not allowed`);
    if (!anyMethod && !methods.has(method.toUpperCase())) throw policyFault(403, CORS_FAULTS.methodNotAllowed, `Method ${method} is not allowed`);
    const asked = first(ctx.headers['access-control-request-headers']);
    const requested = asked ? asked.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean) : [];
    const refused = anyHeader ? undefined : requested.find((h) => !headers.has(h));
    if (refused) throw policyFault(403, CORS_FAULTS.headersNotAllowed, `Header ${refused} is not allowed`);
    ctx.directResponse = {
      status: 204,
      headers: {
        ...originHeaders(origin),
        'access-control-allow-methods': allowMethods,
        // `*` answers with what was asked, so credentialed requests (where `*` is literal) work too.
        'access-control-allow-headers': anyHeader ? requested.join(', ') : allowHeaders,
        ...(maxAge !== undefined && { 'access-control-max-age': maxAge }),
      },
      body: '',
    };
  };

  return {
    type: CORS,
    name,
    intercept(ctx) {
      const origin = first(ctx.headers.origin);
      if (!origin) return;
      const method = first(ctx.headers['access-control-request-method']);
      if (ctx.method === 'OPTIONS' && method) return preflight(ctx, origin, method);
      if (!origins.matches(origin)) return;
      Object.assign(ctx.responseHeaders, originHeaders(origin));
      if (expose) ctx.responseHeaders['access-control-expose-headers'] = expose;
    },
  } satisfies Policy;
};
