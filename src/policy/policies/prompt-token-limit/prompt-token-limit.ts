// PromptTokenLimit: a spike arrest on prompt tokens — at most `rate` tokens per second or minute, smoothed, per identifier.
import { promptTokenLimitSpec } from '../../../config/apim-kinds.js';
import type { RequestContext } from '../../../gateway/context.js';
import { policyKeys } from '../../counter-keys.js';
import { promptTokens } from '../../prompt-tokens.js';
import { parseRate } from '../../rate.js';
import { neverFits, retryLater } from '../../rate-limit-headers.js';
import { RetrySlots } from '../../retry-slots.js';
import type { ApimState, Policy, PolicyFactory } from '../../types.js';
import { compileVariable } from '../../variables.js';
import { loadTokenizer } from '../../../lib/tokenizer.js';

export const PROMPT_TOKEN_LIMIT = 'prompt-token-limit';

export const PROMPT_TOKEN_LIMIT_FAULTS = {
  promptTokenLimitViolation: 'policies.prompttokenlimit.PromptTokenLimitViolation',
} as const;

/** @example promptTokenLimit('prompts', { rate: '20000pm', identifier: { ref: 'developer.app.id' } }, deps) */
export const promptTokenLimit: PolicyFactory = (name, spec, deps) => {
  const s = promptTokenLimitSpec.parse(spec);
  // Counted on every request: the tokenizer's tables load with the config, not in the first request's time.
  loadTokenizer();
  const rate = parseRate(s.rate);
  const identify = s.identifier ? compileVariable(s.identifier.ref) : null;
  const keyOf = policyKeys('ptl', name);
  const global = keyOf('');
  const { counters, now } = deps;
  const F = PROMPT_TOKEN_LIMIT_FAULTS;
  const slots = new RetrySlots();

  return {
    type: PROMPT_TOKEN_LIMIT,
    name,
    async admit(ctx: RequestContext, state: ApimState) {
      // A prompt past the whole rate can only be refused: counting stops past it (a 9 MB prompt was counted whole to
      // be refused). A long prompt is counted off the event loop (a promise); a short one at once, with no await.
      const counted = promptTokens(ctx, state, rate.count);
      const tokens = typeof counted === 'number' ? counted : await counted;
      if (tokens === 0) return;
      if (tokens > rate.count) throw neverFits(F.promptTokenLimitViolation, `The prompt has more than ${rate.count} tokens; the limit is ${s.rate} tokens`);
      const key = identify ? keyOf(identify(ctx, state) ?? '') : global;
      // Each token is one slot of the rate; a whole period's tokens may come at once (a long prompt is one request).
      const r = await counters.call((c) => c.consumeSmoothed(key, rate.intervalMs, rate.count, now(), tokens));
      if (r && !r.allowed) {
        const wait = slots.wait(key, now(), r.retryAfterMs, rate.intervalMs * tokens);
        throw retryLater(F.promptTokenLimitViolation, `Prompt token limit exceeded. Allowed rate : ${s.rate} tokens`, wait);
      }
    },
  } satisfies Policy;
};
