// The self-service report behind GET /v1/tollgate/quota: the caller's products, operation sets and what is left of
// their product quotas, authenticated by the caller's own key.
import type { CountOn, TimeUnit } from '../config/apim-kinds.js';
import type { RequestContext } from '../gateway/context.js';
import { policyFault } from '../gateway/errors.js';
import type { CounterGuard } from './counter-guard.js';
import { productQuotaKey, productTokenKey, windowKey } from './counter-keys.js';
import type { CompiledQuota, GrantStatus, OperationSetGrant } from './identity.js';
import { VERIFY_API_KEY_FAULTS } from './policies/verify-api-key/verify-api-key.js';
import type { ApimState, Step } from './types.js';

export interface LimitReport {
  limit: number;
  interval: number;
  timeUnit: TimeUnit;
  /** null when the counter store could not answer (failOpen). */
  used: number | null;
  remaining: number | null;
  resetAt: string;
}

export interface QuotaReport {
  keyId: string;
  app: { id: string; name: string };
  developer: { id: string; email: string };
  products: {
    name: string;
    status: GrantStatus;
    operationSets: {
      name: string;
      /** null: every model. */
      models: string[] | null;
      quota: LimitReport | null;
      llmTokenQuota: (LimitReport & { countOn: CountOn }) | null;
    }[];
  }[];
}

async function limitReport(counters: CounterGuard, base: string, q: CompiledQuota, now: number): Promise<LimitReport> {
  const w = q.windowAt(now);
  const used = await counters.call((c) => c.get(windowKey(base, w.startMs), now));
  return {
    limit: q.limit,
    interval: q.interval,
    timeUnit: q.timeUnit,
    used: used ?? null,
    remaining: used === undefined ? null : Math.max(0, q.limit - used),
    resetAt: new Date(w.endMs).toISOString(),
  };
}

async function setReport(counters: CounterGuard, set: OperationSetGrant, appId: string, now: number) {
  const tokens = set.llmTokenQuota;
  return {
    name: set.name,
    models: set.models ? [...set.models] : null,
    quota: set.quota ? await limitReport(counters, productQuotaKey(set.name, appId), set.quota, now) : null,
    llmTokenQuota: tokens ? { ...(await limitReport(counters, productTokenKey(set.name, appId), tokens, now)), countOn: tokens.countOn } : null,
  };
}

/**
 * Runs the flow's credential steps (so the same faults apply), then reads the product counters.
 * Product quotas counted with a rolling or flexi Quota type are reported as calendar windows.
 */
export async function quotaReport(ctx: RequestContext, authenticate: readonly Step[], counters: CounterGuard, now: number): Promise<QuotaReport> {
  const state: ApimState = {};
  for (const step of authenticate) await step(ctx, state);
  const key = state.key;
  if (!key) throw policyFault(401, VERIFY_API_KEY_FAULTS.failedToResolveApiKey, 'This report needs an API key');
  const products = [];
  for (const product of key.products) {
    const operationSets = [];
    for (const set of product.operationSets) operationSets.push(await setReport(counters, set, key.appId, now));
    products.push({ name: product.name, status: product.status, operationSets });
  }
  return {
    keyId: key.keyId,
    app: { id: key.appId, name: key.appName },
    developer: { id: key.developerId, email: key.developerEmail },
    products,
  };
}
