// Header values a policy renders from request data (`{request.queryparam.q}`) or a script sets from a model's text
// can hold characters HTTP cannot carry (a line break, an emoji), and a script can name a header anything: node:http
// refuses such a header when the answer's head is written, which would lose the answer (or, unhandled, the process).
import type { RequestContext } from './context.js';

/** What RFC 9110 field values (and node:http) allow: tab, visible ASCII, space, obs-text. */
const UNSENDABLE = /[^\t\x20-\x7e\x80-\xff]/;

/** RFC 9110 token: what a field name may be. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const unsendable = (v: unknown): boolean => (typeof v === 'string' ? UNSENDABLE.test(v) : Array.isArray(v) ? v.some(unsendable) : typeof v !== 'number');

/** Removes the headers whose name or value cannot be sent; returns their names (the answer goes on without them). */
export function dropUnsendableHeaders(headers: Record<string, unknown>): string[] {
  const dropped: string[] = [];
  for (const name in headers) {
    if (!HEADER_NAME.test(name) || unsendable(headers[name])) {
      delete headers[name];
      dropped.push(name);
    }
  }
  return dropped;
}

/**
 * The headers the policies set for the answer (`ctx.responseHeaders`) put on a model server's: theirs win, except
 * that a policy's Vary (CORS: Origin) adds to the server's (Accept-Encoding), as a shared cache must heed both.
 */
export function addPolicyHeaders(out: Record<string, unknown>, policyHeaders: Record<string, string>): void {
  for (const name in policyHeaders) out[name] = name === 'vary' && out.vary ? `${String(out.vary)}, ${policyHeaders.vary}` : policyHeaders[name];
}

/**
 * With API management the rate-limit headers a client sees are its own quotas' (the policies add them): a model
 * server's (a hosted provider's) would show each tenant the operator's account, as though it were its budget.
 */
export function dropUpstreamLimits(out: Record<string, unknown>, ctx: Pick<RequestContext, 'apim'>): void {
  if (ctx.apim === undefined) return;
  for (const name in out) if (name.startsWith('x-ratelimit-')) delete out[name];
}

/**
 * When a CORS policy ran, the answer's CORS headers are the policy's (it adds them after this): a model server's own
 * (vLLM allows every origin by default) would let any site read the answers to an origin the policy refused.
 */
export function dropUpstreamCors(out: Record<string, unknown>, ctx: Pick<RequestContext, 'apim'>): void {
  if (ctx.apim?.corsDecided !== true) return;
  for (const name in out) if (name.startsWith('access-control-')) delete out[name];
}
