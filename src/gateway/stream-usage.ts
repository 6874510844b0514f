// Asking a streaming model server for its usage (`stream_options.include_usage`): for the usage records and token
// metrics (the data plane asks for every stream), a token quota's reconciliation, and an answer a cache keeps (a
// cached answer without usage would reach later clients without it).
import type { PoolConfig } from '../config/runtime-config.js';
import type { RequestContext } from './context.js';

/**
 * Engines whose StreamOptions default `include_usage` to true (vLLM's, and TensorRT-LLM's, copied from it), so that
 * `stream_options: {}` asks for usage there. SGLang's defaults it to false, as OpenAI does.
 */
const USAGE_BY_DEFAULT: ReadonlySet<PoolConfig['engine']> = new Set(['vllm', 'trtllm']);

/**
 * Whether the client asked for the final usage chunk, in the dialect of the server it is sent to: `include_usage:
 * true` anywhere; `stream_options` without `include_usage` on a vLLM-like pool (a client of vLLM gets usage so from
 * the model server itself). An HTTPRoute's URL backend may be OpenAI itself: OpenAI's default (none) holds there.
 * `include_usage: null` is none on every engine (vLLM reads it as false).
 */
export function streamUsageAsked(ctx: RequestContext): boolean {
  const options = ctx.body?.stream_options;
  if (options?.include_usage === true) return true;
  if (options == null || options.include_usage !== undefined) return false;
  const pool = ctx.backend ? (ctx.backend.kind === 'pool' ? ctx.backend.pool : undefined) : ctx.modelConfig?.pool;
  return pool !== undefined && USAGE_BY_DEFAULT.has(pool.engine);
}

/**
 * A stream reports usage only when asked (chat and completions): ask for it, and when the client did not,
 * flag the final usage-only chunk for the proxy to drop. The Responses API always reports it. Idempotent.
 */
export function requestStreamUsage(ctx: RequestContext): void {
  if (!ctx.stream || (ctx.operation !== 'chat.completions' && ctx.operation !== 'completions')) return;
  if (streamUsageAsked(ctx)) return;
  const body = ctx.body!;
  body.stream_options = { ...body.stream_options, include_usage: true };
  ctx.bodyChanged = true;
  ctx.stripStreamUsage = true;
}
