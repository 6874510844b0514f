// LLMTokenQuota: input/output/total tokens per identifier per interval. Admission reserves the estimate atomically
// (so concurrent requests never push the counter past its limit); the response flow reconciles it to the real usage.
import { randomUUID } from 'node:crypto';
import { llmTokenQuotaSpec } from '../../../config/apim-kinds.js';
import type { RequestContext } from '../../../gateway/context.js';
import type { ResponseFlow } from '../../../gateway/hooks.js';
import { policyKeys, productKeys, windowKey } from '../../counter-keys.js';
import type { CompiledTokenQuota } from '../../identity.js';
import { quotaUsage } from '../../quota-usage.js';
import { storeWindowMs, windowsOf } from '../../quota-window.js';
import { neverFits, retryLater, showRefundedTokens, showTokenLimit, showTokenRefusal } from '../../rate-limit-headers.js';
import type { ApimState, Policy, PolicyFactory } from '../../types.js';
import { compileVariable } from '../../variables.js';
import { contextWindow, estimateOutput, outputRoom, setOutputCap } from './token-estimate.js';
import { requestStreamUsage } from '../../../gateway/stream-usage.js';
import { PromptCalibration } from '../../prompt-calibration.js';
import type { Usage } from '../../../gateway/usage.js';
import { longestPromptTokens, promptTokens } from '../../prompt-tokens.js';
import { TokenReservation } from './token-reservation.js';
import { TokensInFlight } from '../../tokens-in-flight.js';
import { loadTokenizer } from '../../../lib/tokenizer.js';
import { isSuccess } from '../../../gateway/http-status.js';

export const LLM_TOKEN_QUOTA = 'llm-token-quota';

/** When a refusal that only requests in flight cause says to try again. */
const IN_FLIGHT_RETRY_MS = 1000;

/**
 * How long a reservation counts as held by a running request at most: the upstream responseTimeout's default, past
 * which a request is cut. A replica that died with requests running leaves their holds for this long, not the window's.
 */
const HOLD_MS = 10 * 60_000;

export const LLM_TOKEN_QUOTA_FAULTS = {
  llmTokenQuotaViolation: 'policies.llmtokenquota.LLMTokenQuotaViolation',
} as const;

/**
 * The room for each answer in the pool's context length after its prompt (a batch's longest) as `correct` has the
 * model's servers count it. Counted up to the context length only: a prompt past it leaves the refusal to the server.
 */
function room(ctx: RequestContext, state: ApimState, correct: (tokens: number) => number): number | Promise<number> {
  const window = contextWindow(ctx);
  if (window === undefined) return Infinity;
  const fit = (prompt: number) => outputRoom(window, correct(prompt));
  const counted = longestPromptTokens(ctx, state, window);
  return typeof counted === 'number' ? fit(counted) : counted.then(fit);
}

/**
 * @example llmTokenQuota('tokens', { limit: 100000, interval: 1, timeUnit: 'hour', countOn: 'total' }, deps)
 * llmTokenQuota('product-tokens', { useQuotaConfigInAPIProduct: true }, deps) — llmOperations.llmTokenQuota, if any.
 */
export const llmTokenQuota: PolicyFactory = (name, spec, deps) => {
  const s = llmTokenQuotaSpec.parse(spec);
  // Counted on every request: the tokenizer's tables load with the config, not in the first request's time.
  loadTokenizer();
  const identifier = s.identifier?.ref ?? 'developer.app.id';
  const variable = compileVariable(identifier);
  const identify = (ctx: RequestContext, state: ApimState) => variable(ctx, state) ?? '';
  const own: CompiledTokenQuota | null = s.useQuotaConfigInAPIProduct
    ? null
    : { limit: s.limit!, interval: s.interval, timeUnit: s.timeUnit!, countOn: s.countOn, windowAt: windowsOf(s.interval, s.timeUnit!) };
  const ownKey = policyKeys('tq', name);
  const productKey = productKeys('pt', identifier);
  const { counters, now } = deps;
  const F = LLM_TOKEN_QUOTA_FAULTS;
  // The gateway's, which outlives engine rebuilds (every key issued rebuilds it); a policy's own without one.
  const calibration = deps.promptCalibration ?? new PromptCalibration(now);
  // The gateway's too: a settlement the store could not take is tried again whatever reload comes meanwhile.
  const inFlight = deps.tokensInFlight ?? new TokensInFlight({ now });
  // Shared by admit and the quota report, so the report reads the very counter a request reserves on.
  /** The limit that applies to this request; none: not limited. */
  const limitOf = (state: ApimState): CompiledTokenQuota | null | undefined => own ?? state.operationSet?.llmTokenQuota;
  /** The counter of identifier value `id` in the window of `at`, and the window. */
  const counterOf = (state: ApimState, q: CompiledTokenQuota, id: string, at: number) => {
    const w = q.windowAt(at);
    const base = own ? ownKey(id) : productKey(state.operationSet!.name, id);
    return { key: windowKey(base, w), windowMs: storeWindowMs(w), endMs: w.endMs };
  };
  /** What that counter holds at `at`, read without reserving, and when its window ends; undefined when failed open. */
  const readCounter = (state: ApimState, q: CompiledTokenQuota, id: string, at: number) => {
    const { key, endMs } = counterOf(state, q, id, at);
    return counters.call(async (c) => ({ count: await c.get(key, at), resetAtMs: endMs }));
  };

  return {
    type: LLM_TOKEN_QUOTA,
    name,
    needsApiKey: s.useQuotaConfigInAPIProduct,
    // Its response flow changes the token headers alone.
    answerEdits: 'none',
    async admit(ctx: RequestContext, state: ApimState) {
      const q = limitOf(state);
      // Reading, cancelling or deleting a stored response makes no tokens: neither charged nor refused for them.
      if (!q || ctx.storedResponse) return;
      const id = identify(ctx, state);
      const { output, choices, chosen } = estimateOutput(ctx, q.countOn);
      // The prompt is counted where it matters: when it is part of what is counted, or for a cap tollgate sets (the
      // room left after it). Then as the target model's servers have lately been counting prompts, not only as
      // tollgate does: configured models only, as a route to a URL takes any model name a client sends.
      const model = ctx.modelConfig ? (ctx.targetModel ?? ctx.model) : undefined;
      // A follow-up's stored conversation (in the prompt count) is already as its server counted it: not corrected.
      const history = ctx.historyTokens ?? 0;
      const correct = (tokens: number) => (model === undefined ? tokens : history + calibration.correct(model, tokens - history));
      // A prompt counted in the quota that alone is over the limit can only be refused: counting stops past the limit
      // (a 9 MB prompt was counted whole to be refused). The calibration only raises it. A long prompt is counted off
      // the event loop (a promise); a short one, nearly all, at once, with nothing to await.
      const counted = q.countOn === 'output' ? 0 : promptTokens(ctx, state, q.limit);
      const estimated = typeof counted === 'number' ? counted : await counted;
      const input = q.countOn === 'output' ? 0 : correct(estimated);
      // A cap of tollgate's choosing is at least one token per choice.
      const least = output ?? choices;
      // Whether it can ever fit is tollgate's own count's to say: the calibration's correction is other requests' doing
      // (bounded, yet one tenant's), so a request it alone pushes past the limit gets a 429 it may retry.
      if (estimated + least > q.limit) {
        const at = now();
        // It can never fit. The headers still say where the caller stands (one read, on this refusal only).
        const r = await readCounter(state, q, id, at);
        if (r) showTokenRefusal(ctx, state, q.limit, Math.max(0, q.limit - r.count), r.resetAtMs - at);
        const needs = estimated > q.limit ? `more than ${q.limit}` : `up to ${estimated + least}`;
        throw neverFits(F.llmTokenQuotaViolation, `The request needs ${needs} tokens; the token quota allows ${q.limit} per ${q.interval} ${q.timeUnit}`);
      }
      // A cap of tollgate's choosing never asks for more than the whole quota could give, nor more than the model has
      // room for after the prompt, nor more than an earlier token quota chose (it reserved only that). It is set per
      // choice upstream, so with `n` choices the reservation is n times it (`cap` is always the whole answer's).
      const perChoice = (total: number) => Math.floor(total / choices);
      // Counted only for a cap tollgate chooses; before the time is read, as a long prompt's count takes a while.
      const left = output === null ? room(ctx, state, correct) : Infinity;
      const fits = typeof left === 'number' ? left : await left;
      const at = now();
      let cap = output ?? Math.max(1, Math.min(s.defaultMaxTokens, perChoice(q.limit - input), fits, chosen ?? Infinity)) * choices;
      const { key, windowMs, endMs } = counterOf(state, q, id, at);
      const hold = { id: randomUUID(), untilMs: at + HOLD_MS };
      let r = await counters.call((c) => c.reserve(key, input + cap, q.limit, windowMs, hold, at));
      if (r && !r.allowed && output === null && perChoice(r.remaining - input) >= 1) {
        // Near the end of the quota, a cap of tollgate's choosing shrinks to what is left.
        cap = perChoice(r.remaining - input) * choices;
        r = await counters.call((c) => c.reserve(key, input + cap, q.limit, windowMs, hold, at));
      }
      if (!r) return;
      const resetMs = endMs - at;
      if (!r.allowed) {
        showTokenRefusal(ctx, state, q.limit, r.remaining, resetMs);
        // Refused only for what requests still running hold, on any replica (the store keeps their holds with the
        // count): they give back what they do not use within a request's time (a reservation without max_tokens can
        // be the whole quota), so the window's end, an hour away, was the wrong time to come back. Judged on the least
        // the request can be admitted with, as a cap of tollgate's choosing shrinks to what is left (judged on the
        // 4,096 first chosen, a request that 8 tokens would admit was told to wait for the window's end).
        const needs = input + least;
        const { held } = r;
        const soon = needs <= r.remaining + held;
        const why = soon ? `; ${held} of them are held by requests in flight, retry in a moment` : '';
        throw retryLater(F.llmTokenQuotaViolation, `LLM token quota exceeded: ${r.remaining} of ${q.limit} tokens left, this request needs ${output === null ? 'at least' : 'up to'} ${needs}${why}`, soon ? IN_FLIGHT_RETRY_MS : resetMs);
      }
      // Learnt from the whole prompt counted exactly (by this policy or another), never from a count cut at a budget,
      // nor from a follow-up's: its server counts the stored conversation too (all of it when tollgate does not know
      // it), which is no way of counting prompts, and every tenant of the model had its estimates raised by it.
      const exact = state.promptTokens;
      const followUp = typeof ctx.body?.previous_response_id === 'string';
      const learn = model === undefined || exact === undefined || followUp ? undefined : (usage: Usage) => calibration.observe(model, exact, usage.inputTokens);
      (state.settlers ??= []).push(new TokenReservation(counters, inFlight, { key, id: hold.id, endMs }, q.countOn, input + cap, learn));
      showTokenLimit(ctx, state, q.limit, r.remaining, resetMs, input + cap);
      if (output === null) setOutputCap(ctx, perChoice(cap));
      requestStreamUsage(ctx);
    },
    respond(ctx: RequestContext, state: ApimState, status: number): ResponseFlow | undefined {
      // A model server's 4xx, 429 or 5xx: the reservation goes back (TokenReservation), so the answer's head shows
      // what is left without it, as the counter will and as a refusal's does.
      if (isSuccess(status)) return undefined;
      return { headers: (_status, out) => showRefundedTokens(ctx, state, out) };
    },
    usage(ctx: RequestContext, state: ApimState) {
      const q = limitOf(state);
      if (!q) return Promise.resolve(null);
      const at = now();
      return quotaUsage(ctx, state, {
        kind: 'LLMTokenQuota',
        limit: q.limit,
        interval: q.interval,
        timeUnit: q.timeUnit,
        window: 'fixed',
        countOn: q.countOn,
        identifier,
        variable,
        identify,
        read: (id) => readCounter(state, q, id, at),
        latestResetMs: q.windowAt(at).endMs,
      });
    },
  } satisfies Policy;
};
