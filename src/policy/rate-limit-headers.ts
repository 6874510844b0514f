// OpenAI's rate-limit headers (x-ratelimit-{limit,remaining,reset}-{requests,tokens}) and retry-after.
// When several limits apply, the one with the least left is shown.
import type { OutgoingHttpHeaders } from 'node:http';
import type { RequestContext } from '../gateway/context.js';
import { policyFault, type GatewayError } from '../gateway/errors.js';
import type { ApimState, TokenFigure } from './types.js';

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

/**
 * The 429 for a request that can never pass (more than the whole limit at once): no retry-after, and
 * `x-should-retry: false`, which the OpenAI SDKs honour (they retry every other 429, twice by default).
 */
export function neverFits(code: string, message: string): GatewayError {
  return policyFault(429, code, message, { 'x-should-retry': 'false' });
}

/**
 * The longest wait a refusal leaves to the client's SDK. OpenAI's SDKs retry every 429 (twice by default) after
 * whatever `retry-after` says — the Node SDK v6 with no upper bound, deaf to the request's timeout and signal — so a
 * spent hourly or daily quota held a call for its whole window instead of raising RateLimitError.
 */
const LONGEST_SDK_WAIT_MS = 60_000;

/**
 * The 429 for a request that may pass in `ms`: `retry-after` in whole seconds, at least 1 (a client told 0 would retry
 * at once), and `retry-after-ms`, which OpenAI's SDKs prefer, to the millisecond; past LONGEST_SDK_WAIT_MS
 * `x-should-retry: false` instead, so SDKs raise the error at once and the caller decides. A smoothed rate's refusals
 * pass the slot each caller was given (RetrySlots).
 */
export function retryLater(code: string, message: string, ms: number): GatewayError {
  if (ms > LONGEST_SDK_WAIT_MS) return policyFault(429, code, message, { 'retry-after': String(Math.ceil(ms / 1000)), 'x-should-retry': 'false' });
  return policyFault(429, code, message, { 'retry-after': String(Math.max(1, Math.ceil(ms / 1000))), 'retry-after-ms': String(Math.max(1, Math.ceil(ms))) });
}

export function showRequestLimit(ctx: RequestContext, state: ApimState, limit: number, remaining: number, resetMs: number): void {
  if (state.requestsRemaining !== undefined && state.requestsRemaining < remaining) return;
  state.requestsRemaining = remaining;
  const h = ctx.responseHeaders;
  h['x-ratelimit-limit-requests'] = String(limit);
  h['x-ratelimit-remaining-requests'] = String(remaining);
  h['x-ratelimit-reset-requests'] = formatReset(resetMs);
}

/**
 * A token quota's figures after this request's reservation (`reserved`, given back if the request is refused later);
 * the tightest of the request's token quotas shows.
 */
export function showTokenLimit(ctx: RequestContext, state: ApimState, limit: number, remaining: number, resetMs: number, reserved = 0): void {
  (state.tokenFigures ??= []).push({ limit, remaining, resetMs, reserved });
  if (!state.tokenRefusal) writeTightest(ctx.responseHeaders, state.tokenFigures);
}

/** The token quota that refused the request shows, whatever the others have left. */
export function showTokenRefusal(ctx: RequestContext, state: ApimState, limit: number, remaining: number, resetMs: number): void {
  state.tokenRefusal = true;
  writeTokenHeaders(ctx.responseHeaders, { limit, remaining, resetMs });
}

/**
 * The reservations token quotas made for the request are given back (a policy refused it after them, or no model
 * server accepted it), so the headers show what is left without them: the policies' (`ctx.responseHeaders`), and
 * `head`, the head of a model server's answer already shaped from them, when given.
 */
export function showRefundedTokens(ctx: RequestContext, state: ApimState, head?: OutgoingHttpHeaders): void {
  const figures = state.tokenFigures;
  if (state.tokenRefusal || !figures?.some((f) => f.reserved > 0)) return;
  for (const f of figures) {
    f.remaining = Math.min(f.limit, f.remaining + f.reserved);
    f.reserved = 0;
  }
  writeTightest(ctx.responseHeaders, figures);
  if (head) writeTightest(head, figures);
}

function writeTightest(h: OutgoingHttpHeaders, figures: readonly TokenFigure[]): void {
  let tightest = figures[0];
  for (const f of figures) if (f.remaining < tightest.remaining) tightest = f;
  writeTokenHeaders(h, tightest);
}

function writeTokenHeaders(h: OutgoingHttpHeaders, f: Pick<TokenFigure, 'limit' | 'remaining' | 'resetMs'>): void {
  h['x-ratelimit-limit-tokens'] = String(f.limit);
  h['x-ratelimit-remaining-tokens'] = String(f.remaining);
  h['x-ratelimit-reset-tokens'] = formatReset(f.resetMs);
}
