// OpenAI's rate-limit headers (x-ratelimit-{limit,remaining,reset}-{requests,tokens}) and retry-after.
// When several limits apply, the one with the least left is shown.
import type { RequestContext } from '../gateway/context.js';
import type { ApimState } from './types.js';

/** Go-style durations as OpenAI sends them: "20ms", "1.5s", "6m0s", "1h0m0s". */
export function formatReset(ms: number): string {
  const total = Math.max(0, Math.ceil(ms));
  if (total < 1000) return `${total}ms`;
  const h = Math.floor(total / 3_600_000);
  const m = Math.floor((total % 3_600_000) / 60_000);
  const s = `${(total % 60_000) / 1000}s`;
  if (h > 0) return `${h}h${m}m${s}`;
  return m > 0 ? `${m}m${s}` : s;
}

/** Whole seconds, at least 1 (a client told 0 would retry at once). */
export function retryAfter(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)));
}

export function showRequestLimit(ctx: RequestContext, state: ApimState, limit: number, remaining: number, resetMs: number): void {
  if (state.requestsRemaining !== undefined && state.requestsRemaining < remaining) return;
  state.requestsRemaining = remaining;
  const h = ctx.responseHeaders;
  h['x-ratelimit-limit-requests'] = String(limit);
  h['x-ratelimit-remaining-requests'] = String(remaining);
  h['x-ratelimit-reset-requests'] = formatReset(resetMs);
}

export function showTokenLimit(ctx: RequestContext, state: ApimState, limit: number, remaining: number, resetMs: number): void {
  if (state.tokensRemaining !== undefined && state.tokensRemaining < remaining) return;
  state.tokensRemaining = remaining;
  const h = ctx.responseHeaders;
  h['x-ratelimit-limit-tokens'] = String(limit);
  h['x-ratelimit-remaining-tokens'] = String(remaining);
  h['x-ratelimit-reset-tokens'] = formatReset(resetMs);
}
