// Asking a streaming model server for its usage (`stream_options.include_usage`): for the usage records and token
// metrics (the data plane asks for every stream), a token quota's reconciliation, and an answer a cache keeps (a
// cached answer without usage would reach later clients without it).
import type { RequestContext } from './context.js';

/**
 * A stream reports usage only when asked (chat and completions): ask for it, and when the client did not,
 * flag the final usage-only chunk for the proxy to drop. The Responses API always reports it. Idempotent.
 */
export function requestStreamUsage(ctx: RequestContext): void {
  if (!ctx.stream || (ctx.operation !== 'chat.completions' && ctx.operation !== 'completions')) return;
  const body = ctx.body!;
  const options = body.stream_options;
  if (options?.include_usage === true) return;
  body.stream_options = { ...options, include_usage: true };
  ctx.bodyChanged = true;
  ctx.stripStreamUsage = true;
}
