// Quota: requests (or message weight) per identifier per interval, from the policy's own allow or, with
// useQuotaConfigInAPIProduct, from the operation set that entitled the request (counted per app and operation set).
import { quotaSpec } from '../../../config/apim-kinds.js';
import type { RequestContext } from '../../../gateway/context.js';
import { policyKeys, productKeys } from '../../counter-keys.js';
import type { CompiledQuota } from '../../identity.js';
import { quotaUsage } from '../../quota-usage.js';
import { windowsOf } from '../../quota-window.js';
import { neverFits, retryLater, showRequestLimit } from '../../rate-limit-headers.js';
import type { ApimState, Policy, PolicyFactory } from '../../types.js';
import { compileVariable, compileWeight } from '../../variables.js';
import { andThen } from '../../../lib/maybe-promise.js';
import { compileQuotaCount, compileQuotaRead, type QuotaCount } from './quota-counter.js';

export const QUOTA = 'quota';

export const QUOTA_FAULTS = {
  quotaViolation: 'policies.ratelimit.QuotaViolation',
} as const;

/**
 * @example quota('per-app', { allow: 1000, interval: 1, timeUnit: 'hour' }, deps)
 * quota('product', { useQuotaConfigInAPIProduct: true }, deps) — the operation set's quota, if it has one.
 */
export const quota: PolicyFactory = (name, spec, deps) => {
  const s = quotaSpec.parse(spec);
  const identifier = s.identifier?.ref ?? 'developer.app.id';
  const variable = compileVariable(identifier);
  const identify = (ctx: RequestContext, state: ApimState) => variable(ctx, state) ?? '';
  const weigh = compileWeight(s.messageWeight?.ref);
  const window = s.type === 'rollingwindow' || s.type === 'flexi' ? s.type : 'fixed';
  const count = compileQuotaCount(deps.counters, window, s.countOnly ? 'countOnly' : s.enforceOnly ? 'enforceOnly' : 'both');
  const reader = compileQuotaRead(deps.counters, window);
  const own: CompiledQuota | null = s.useQuotaConfigInAPIProduct
    ? null
    : {
        limit: typeof s.allow === 'object' ? s.allow.count : (s.allow ?? s.limit!),
        interval: s.interval,
        timeUnit: s.timeUnit!,
        windowAt: windowsOf(s.interval, s.timeUnit!, s.startTime === undefined ? undefined : Date.parse(s.startTime)),
      };
  const ownKey = policyKeys('q', s.sharedName ?? name);
  const productKey = productKeys('pq', identifier);
  const { now } = deps;
  // Shared by admit and the quota report, so the report reads the very counter a request counts on.
  /** The limit that applies to this request; none: not limited. */
  const limitOf = (state: ApimState): CompiledQuota | null | undefined => own ?? state.operationSet?.quota;
  /** The counter of identifier value `id` (the operation set's, when the limit is the product's). */
  const counterOf = (state: ApimState, id: string): string => (own ? ownKey(id) : productKey(state.operationSet!.name, id));
  /** Shows what the count left, or refuses; nothing when the store failed open. */
  const judge = (ctx: RequestContext, state: ApimState, q: CompiledQuota, id: string, at: number, r: QuotaCount | undefined): void => {
    if (!r) return;
    const resetMs = r.resetAtMs - at;
    const remaining = Math.max(0, q.limit - r.count);
    if (!r.allowed) {
      // The limit that refused is the one the client must see, whatever others showed.
      state.requestsRemaining = undefined;
      showRequestLimit(ctx, state, q.limit, remaining, resetMs);
      throw retryLater(QUOTA_FAULTS.quotaViolation, `Rate limit quota violation. Quota limit exceeded. Identifier : ${id || '_default'}`, resetMs);
    }
    showRequestLimit(ctx, state, q.limit, remaining, resetMs);
  };

  return {
    type: QUOTA,
    name,
    needsApiKey: s.useQuotaConfigInAPIProduct,
    admit(ctx: RequestContext, state: ApimState) {
      const q = limitOf(state);
      if (!q) return;
      const id = identify(ctx, state);
      const weight = weigh ? weigh(ctx, state) : 1;
      // A weight above the whole allowance never fits (with a retry-after, a rolling window said 1 s, and the client
      // came back every second to be refused again).
      if (weight > q.limit && !s.countOnly) {
        throw neverFits(QUOTA_FAULTS.quotaViolation, `Rate limit quota violation. Message weight ${weight} is more than the quota limit ${q.limit}. Identifier : ${id || '_default'}`);
      }
      const at = now();
      return andThen(count(counterOf(state, id), weight, q, at), (r) => judge(ctx, state, q, id, at, r));
    },
    usage(ctx: RequestContext, state: ApimState) {
      const q = limitOf(state);
      if (!q) return Promise.resolve(null);
      const at = now();
      return quotaUsage(ctx, state, {
        kind: 'Quota',
        limit: q.limit,
        interval: q.interval,
        timeUnit: q.timeUnit,
        window,
        identifier,
        variable,
        identify,
        read: async (id) => reader.read(counterOf(state, id), q, at),
        latestResetMs: reader.latestResetMs(q, at),
      });
    },
  } satisfies Policy;
};
