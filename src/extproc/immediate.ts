// A local reply for Envoy to send instead of forwarding: a fault, or an answer tollgate gives itself (a cache hit,
// the models list) — with the status, headers and body the data plane would send.
import type { RequestContext } from '../gateway/context.js';
import type { ErrorResponse } from '../gateway/errors.js';
import type { DirectResponse } from '../gateway/hooks.js';
import { accountOwnAnswer } from '../gateway/own-answer.js';
import { MutationBuilder } from './headers.js';
import type { ProcessingResponse } from './messages.js';

/** Envoy frames the local reply itself; these would contradict it (HTTP/2 forbids the hop-by-hop ones). */
const FRAMING = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length']);

/** Envoy shows `details` in %RESPONSE_CODE_DETAILS%, which takes no whitespace. */
function details(code: string): string {
  return code.replace(/[^\w.-]/g, '_');
}

export function immediateResponse(ctx: RequestContext, r: ErrorResponse | DirectResponse, raw: boolean): ProcessingResponse {
  const headers = new MutationBuilder(raw);
  for (const name in r.headers) if (!FRAMING.has(name)) headers.set(name, r.headers[name]);
  for (const name in ctx.responseHeaders) if (r.headers[name] === undefined) headers.set(name, ctx.responseHeaders[name]);
  if (r.headers['x-request-id'] === undefined) headers.set('x-request-id', ctx.id);
  const body = typeof r.body === 'string' ? Buffer.from(r.body) : r.body;
  // Envoy sends this body to the client: counted as the data plane counts its own answers.
  accountOwnAnswer(ctx, r, body.length);
  return {
    immediate_response: {
      status: { code: r.status },
      headers: headers.build(),
      body,
      details: details(ctx.errorCode ?? `tollgate_${r.status}`),
    },
  };
}
