// LLMTokenQuota: input/output/total tokens per identifier per interval. Admission reserves the estimate atomically
// (so concurrent requests never push the counter past its limit); the response flow reconciles it to the real usage.
import { llmTokenQuotaSpec } from '../../../config/apim-kinds.js';
import type { RequestContext } from '../../../gateway/context.js';
import type { ResponseFlow } from '../../../gateway/hooks.js';
import { policyKeys, productKeys, windowKeys } from '../../counter-keys.js';
import type { CompiledTokenQuota } from '../../identity.js';
import { quotaUsage } from '../../quota-usage.js';
import { storeWindowMs, windowsOf, type QuotaWindow } from '../../quota-window.js';
import { neverFits, retryLater, showRefundedTokens, showTokenLimit, showTokenRefusal } from '../../rate-limit-headers.js';
import type { ApimState, Policy, PolicyFactory } from '../../types.js';
import { compileVariable } from '../../variables.js';
import { contextWindow, estimateOutput, outputRoom, setOutputCap, type OutputEstimate } from './token-estimate.js';
import { requestStreamUsage } from '../../../gateway/stream-usage.js';
import { PromptCalibration } from '../../prompt-calibration.js';
import type { Usage } from '../../../gateway/usage.js';
import { longestPromptTokens, promptTokens } from '../../prompt-tokens.js';
import { TokenReservation } from './token-reservation.js';
import { TokensInFlight } from '../../tokens-in-flight.js';
import { loadTokenizer } from '../../../lib/tokenizer.js';
import { isSuccess } from '../../../gateway/http-status.js';
import { andThen } from '../../../lib/maybe-promise.js';
import type { ReservationHold, ReserveResult } from '../../../store/counters/counter-store.js';

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

/** One request's admission, carried across the steps that may wait (a long prompt's count, the store). */
interface Ask {
  ctx: RequestContext;
  state: ApimState;
  q: CompiledTokenQuota;
  id: string;
  /** estimateOutput's. */
  output: number | null;
  choices: number;
  chosen: number | undefined;
  /** Whose servers' prompt counts calibrate this one's (configured models only). */
  model: string | undefined;
  /** The prompt's tokens as counted in the quota (corrected), and the least the answer can be admitted with. */
  input: number;
  least: number;
  // Set by the reservation: the answer's cap, the time it was made at, and where.
  cap: number;
  at: number;
  key: string;
  windowMs: number;
  endMs: number;
  hold: ReservationHold;
}

const NO_HOLD: ReservationHold = { id: 0, untilMs: 0 };

/** A cap of tollgate's choosing is set per choice upstream: with `n` choices, the whole answer's is n times it. */
function perChoice(a: Ask, total: number): number {
  return Math.floor(total / a.choices);
}

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
  const keyOf = windowKeys();
  /** The counter of identifier value `id` in the window `w`. */
  const counterKey = (state: ApimState, id: string, w: QuotaWindow) => keyOf(own ? ownKey(id) : productKey(state.operationSet!.name, id), w);
  /** What that counter holds at `at`, read without reserving, and when its window ends; undefined when failed open. */
  const readCounter = (state: ApimState, q: CompiledTokenQuota, id: string, at: number) => {
    const w = q.windowAt(at);
    const key = counterKey(state, id, w);
    return counters.call((c) => andThen(c.get(key, at), (count) => ({ count, resetAtMs: w.endMs })));
  };

  /**
   * Once the prompt is counted (`estimated`, tollgate's own count): refused, or on to the reservation. `id` and the
   * output estimate come before the count, which can take a while.
   */
  const counted = (ctx: RequestContext, state: ApimState, q: CompiledTokenQuota, id: string, estimate: OutputEstimate, estimated: number): void | Promise<void> => {
    const { output, choices, chosen } = estimate;
    // The prompt is counted where it matters: when it is part of what is counted, or for a cap tollgate sets (the
    // room left after it). Then as the target model's servers have lately been counting prompts, not only as
    // tollgate does: configured models only, as a route to a URL takes any model name a client sends.
    const model = ctx.modelConfig ? (ctx.targetModel ?? ctx.model) : undefined;
    // A follow-up's stored conversation (in the prompt count) is already as its server counted it: not corrected.
    const history = ctx.historyTokens ?? 0;
    const correct = (tokens: number) => (model === undefined ? tokens : history + calibration.correct(model, tokens - history));
    const input = q.countOn === 'output' ? 0 : correct(estimated);
    // A cap of tollgate's choosing is at least one token per choice.
    const least = output ?? choices;
    // Whether it can ever fit is tollgate's own count's to say: the calibration's correction is other requests' doing
    // (bounded, yet one tenant's), so a request it alone pushes past the limit gets a 429 it may retry.
    if (estimated + least > q.limit) {
      const at = now();
      const needs = estimated > q.limit ? `more than ${q.limit}` : `up to ${estimated + least}`;
      // It can never fit. The headers still say where the caller stands (one read, on this refusal only).
      return andThen(readCounter(state, q, id, at), (r) => {
        if (r) showTokenRefusal(ctx, state, q.limit, Math.max(0, q.limit - r.count), r.resetAtMs - at);
        throw neverFits(F.llmTokenQuotaViolation, `The request needs ${needs} tokens; the token quota allows ${q.limit} per ${q.interval} ${q.timeUnit}`);
      });
    }
    const ask: Ask = { ctx, state, q, id, output, choices, chosen, model, input, least, cap: 0, at: 0, key: '', windowMs: 0, endMs: 0, hold: NO_HOLD };
    // Counted only for a cap tollgate chooses; before the time is read, as a long prompt's count takes a while.
    const left = output === null ? room(ctx, state, correct) : Infinity;
    return andThen(left, (fits) => reserve(ask, fits));
  };

  /** Reserves what the request may use, `fits` being the room the model has for its answer. */
  const reserve = (a: Ask, fits: number): void | Promise<void> => {
    const { q } = a;
    const at = now();
    // A cap of tollgate's choosing never asks for more than the whole quota could give, nor more than the model has
    // room for after the prompt, nor more than an earlier token quota chose (it reserved only that). It is set per
    // choice upstream, so with `n` choices the reservation is n times it (`cap` is always the whole answer's).
    a.cap = a.output ?? Math.max(1, Math.min(s.defaultMaxTokens, perChoice(a, q.limit - a.input), fits, a.chosen ?? Infinity)) * a.choices;
    const w = q.windowAt(at);
    a.at = at;
    a.key = counterKey(a.state, a.id, w);
    a.windowMs = storeWindowMs(w);
    a.endMs = w.endMs;
    a.hold = { id: counters.holdId(), untilMs: at + HOLD_MS };
    const r = counters.call((c) => c.reserve(a.key, a.input + a.cap, q.limit, a.windowMs, a.hold, at));
    return andThen(r, (answered) => retry(a, answered));
  };

  /** Near the end of the quota, a cap of tollgate's choosing shrinks to what is left, and is reserved again. */
  const retry = (a: Ask, r: ReserveResult | undefined): void | Promise<void> => {
    if (!r || r.allowed || a.output !== null || perChoice(a, r.remaining - a.input) < 1) return reserved(a, r);
    a.cap = perChoice(a, r.remaining - a.input) * a.choices;
    const again = counters.call((c) => c.reserve(a.key, a.input + a.cap, a.q.limit, a.windowMs, a.hold, a.at));
    return andThen(again, (answered) => reserved(a, answered));
  };

  /** Refused (429), or admitted with its reservation to settle once the exchange is over; nothing when failed open. */
  const reserved = (a: Ask, r: ReserveResult | undefined): void => {
    if (!r) return;
    const { ctx, state, q, output, input, cap } = a;
    const resetMs = a.endMs - a.at;
    if (!r.allowed) {
      showTokenRefusal(ctx, state, q.limit, r.remaining, resetMs);
      // Refused only for what requests still running hold, on any replica (the store keeps their holds with the
      // count): they give back what they do not use within a request's time (a reservation without max_tokens can
      // be the whole quota), so the window's end, an hour away, was the wrong time to come back. Judged on the least
      // the request can be admitted with, as a cap of tollgate's choosing shrinks to what is left (judged on the
      // 4,096 first chosen, a request that 8 tokens would admit was told to wait for the window's end).
      const needs = input + a.least;
      const { held } = r;
      const soon = needs <= r.remaining + held;
      const why = soon ? `; ${held} of them are held by requests in flight, retry in a moment` : '';
      throw retryLater(F.llmTokenQuotaViolation, `LLM token quota exceeded: ${r.remaining} of ${q.limit} tokens left, this request needs ${output === null ? 'at least' : 'up to'} ${needs}${why}`, soon ? IN_FLIGHT_RETRY_MS : resetMs);
    }
    // Learnt from the whole prompt counted exactly (by this policy or another), never from a count cut at a budget,
    // nor from a follow-up's: its server counts the stored conversation too (all of it when tollgate does not know
    // it), which is no way of counting prompts, and every tenant of the model had its estimates raised by it.
    const { model } = a;
    const exact = state.promptTokens;
    const followUp = typeof ctx.body?.previous_response_id === 'string';
    const learn = model === undefined || exact === undefined || followUp ? undefined : (usage: Usage) => calibration.observe(model, exact, usage.inputTokens);
    (state.settlers ??= []).push(new TokenReservation(counters, inFlight, { key: a.key, id: a.hold.id, endMs: a.endMs }, q.countOn, input + cap, learn));
    showTokenLimit(ctx, state, q.limit, r.remaining, resetMs, input + cap);
    if (output === null) setOutputCap(ctx, perChoice(a, cap));
    requestStreamUsage(ctx);
  };

  return {
    type: LLM_TOKEN_QUOTA,
    name,
    needsApiKey: s.useQuotaConfigInAPIProduct,
    // Its response flow changes the token headers alone.
    answerEdits: 'none',
    admit(ctx: RequestContext, state: ApimState) {
      const q = limitOf(state);
      // Reading, cancelling or deleting a stored response makes no tokens: neither charged nor refused for them.
      if (!q || ctx.storedResponse) return;
      // A prompt counted in the quota that alone is over the limit can only be refused: counting stops past the limit
      // (a 9 MB prompt was counted whole to be refused). The calibration only raises it. A long prompt is counted off
      // the event loop (a promise); a short one, nearly all, at once, with nothing to await.
      const id = identify(ctx, state);
      const estimate = estimateOutput(ctx, q.countOn);
      const estimated = q.countOn === 'output' ? 0 : promptTokens(ctx, state, q.limit);
      return andThen(estimated, (tokens) => counted(ctx, state, q, id, estimate, tokens));
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
        read: async (id) => readCounter(state, q, id, at),
        latestResetMs: q.windowAt(at).endMs,
      });
    },
  } satisfies Policy;
};
