// SpikeArrest: smooths traffic to a rate ("5ps" is one request per 200 ms), per identifier, with message weights;
// useEffectiveCount counts in a sliding window instead, as Apigee does: at most the rate's count in any second or
// minute, which may all arrive at once.
import { spikeArrestSpec } from '../../../config/apim-kinds.js';
import type { RequestContext } from '../../../gateway/context.js';
import { andThen } from '../../../lib/maybe-promise.js';
import type { MaybePromise } from '../../../store/caches/cache-store.js';
import type { SmoothedResult } from '../../../store/counters/counter-store.js';
import type { CounterGuard } from '../../counter-guard.js';
import { policyKeys } from '../../counter-keys.js';
import { parseRate, type Rate } from '../../rate.js';
import { neverFits, retryLater } from '../../rate-limit-headers.js';
import { RetrySlots } from '../../retry-slots.js';
import type { ApimState, Policy, PolicyFactory } from '../../types.js';
import { compileVariable, compileWeight } from '../../variables.js';

export const SPIKE_ARREST = 'spike-arrest';

export const SPIKE_ARREST_FAULTS = {
  spikeArrestViolation: 'policies.ratelimit.SpikeArrestViolation',
} as const;

/** Counts a request of `weight` on `key`; undefined when failed open. A promise only when the store answered with one. */
type Count = (key: string, weight: number) => MaybePromise<SmoothedResult | undefined>;

/**
 * Smoothed (GCRA): the clock counts whole milliseconds, so above 1000ps a tick must hold more than one request, or every
 * request stamped in the same millisecond as another was refused and the rate stopped at 1,000 a second. A weighted
 * request needs its whole weight free at once, so the burst never stays below it.
 */
function smoothed(counters: CounterGuard, rate: Rate, now: () => number): Count {
  const burst = Math.max(1, Math.ceil(1 / rate.intervalMs));
  return (key, weight) => counters.call((c) => c.consumeSmoothed(key, rate.intervalMs, Math.max(burst, weight), now(), weight));
}

/**
 * useEffectiveCount: a rolling window of one period. GCRA with a burst of the whole count admitted twice the rate in
 * one second (a full burst, then the refill during that same second: 19 at 10ps).
 */
function slidingWindow(counters: CounterGuard, rate: Rate, now: () => number): Count {
  return (key, weight) => {
    const at = now();
    return andThen(counters.call((c) => c.consumeRolling(key, weight, rate.count, rate.periodMs, at)), (r) => r && { allowed: r.allowed, retryAfterMs: r.allowed ? 0 : r.resetAtMs - at });
  };
}

/**
 * @example spikeArrest('protect-pool', { rate: '30ps' }, deps) — one counter for all traffic;
 * spikeArrest('per-app', { rate: '600pm', identifier: { ref: 'developer.app.id' } }, deps)
 */
export const spikeArrest: PolicyFactory = (name, spec, deps) => {
  const s = spikeArrestSpec.parse(spec);
  const rate = parseRate(s.rate);
  const identify = s.identifier ? compileVariable(s.identifier.ref) : null;
  const weigh = compileWeight(s.messageWeight?.ref);
  const keyOf = policyKeys('sa', name);
  const global = keyOf('');
  const count = (s.useEffectiveCount ? slidingWindow : smoothed)(deps.counters, rate, deps.now);
  const slots = new RetrySlots();
  const judge = (r: SmoothedResult | undefined, key: string, weight: number): void => {
    if (r && !r.allowed) {
      const wait = slots.wait(key, deps.now(), r.retryAfterMs, rate.intervalMs * weight);
      throw retryLater(SPIKE_ARREST_FAULTS.spikeArrestViolation, `Spike arrest violation. Allowed rate : ${s.rate}`, wait);
    }
  };

  return {
    type: SPIKE_ARREST,
    name,
    admit(ctx: RequestContext, state: ApimState) {
      const key = identify ? keyOf(identify(ctx, state) ?? '') : global;
      const weight = weigh ? weigh(ctx, state) : 1;
      // More than the rate's whole count at once never fits: refused, never counted. Admitted with the burst raised to
      // it, one request of weight 1e9 at 100ps held the counter, and everyone who shares it, for 115 days. Up to the
      // count, a smoothed counter runs at most one period ahead.
      if (weight > rate.count) {
        throw neverFits(SPIKE_ARREST_FAULTS.spikeArrestViolation, `Spike arrest violation. Message weight ${weight} is more than the allowed rate : ${s.rate}`);
      }
      return andThen(count(key, weight), (r) => judge(r, key, weight));
    },
  } satisfies Policy;
};
