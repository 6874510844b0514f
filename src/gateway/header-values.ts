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
 * A model server's answer headers with the policies' (`ctx.responseHeaders`) put on them: theirs win, except that a
 * policy's Vary (CORS: Origin) adds to the server's (Accept-Encoding), as a shared cache must heed both. Headers the
 * policies own go first, whether or not the policies set them this time:
 * - with API management, the server's `x-ratelimit-*` (a hosted provider's account budget would show each tenant the
 *   operator's account as though it were its own quota);
 * - when a CORS policy ran, the server's `access-control-*` (vLLM allows every origin by default, which would let any
 *   site read the answers to an origin the policy refused).
 */
export function applyPolicyHeaders(out: Record<string, unknown>, ctx: Pick<RequestContext, 'apim' | 'responseHeaders'>): void {
  const apim = ctx.apim;
  if (apim !== undefined) {
    const cors = apim.corsDecided === true;
    for (const name in out) if (name.startsWith('x-ratelimit-') || (cors && name.startsWith('access-control-'))) delete out[name];
  }
  const policyHeaders = ctx.responseHeaders;
  for (const name in policyHeaders) out[name] = name === 'vary' && out.vary ? `${String(out.vary)}, ${policyHeaders.vary}` : policyHeaders[name];
}
