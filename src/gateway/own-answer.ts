// The gateway's own answer (a cache hit, a refusal), counted as a model server's answer is, on the data plane and over
// ext_proc alike: the two kept copies of this, and one of them missed the cache hits' TTFT.
import type { RequestContext } from './context.js';
import type { ErrorResponse } from './errors.js';
import type { DirectResponse } from './hooks.js';
import { isSuccess, sendsBody } from './http-status.js';
import { readAnswerText } from './usage.js';

/**
 * Sets the bytes the client is sent (none to a HEAD, a 204 or a 304, whose length the headers still give), and for a
 * successful answer to a model request (a cache hit) its TTFT (metrics, usage record, access log) and the answer text
 * the access log shows: the answer the client read.
 */
export function accountOwnAnswer(ctx: RequestContext, r: ErrorResponse | DirectResponse, length: number): void {
  ctx.bytesOut = sendsBody(ctx.method, r.status) ? length : 0;
  if (!isSuccess(r.status)) return;
  if (ctx.operation) ctx.ttftMs = performance.now() - ctx.start;
  if (ctx.completion) readAnswerText(ctx.completion, r);
}
