// The self-service report behind GET /v1/tollgate/quota: the caller's products, operation sets and every quota that
// applies to their requests, authenticated by the caller's own key. Each quota policy reads its own counter (the same
// key and window functions its admit phase counts with), so the report shows what the policy enforces.
import type { CountOn, TimeUnit } from '../config/apim-kinds.js';
import type { RequestContext } from '../gateway/context.js';
import { policyFault } from '../gateway/errors.js';
import type { CompiledFlow } from './flow.js';
import type { CompiledQuota, GrantStatus, KeyRecord, OperationSetGrant } from './identity.js';
import { VERIFY_API_KEY_FAULTS } from './policies/verify-api-key/verify-api-key.js';
import type { QuotaUsage, QuotaWindowType } from './quota-usage.js';
import type { ApimState } from './types.js';

/** One quota counter that applies to the caller's requests. */
export interface QuotaEntry extends QuotaUsage {
  /** The Quota or LLMTokenQuota policy (metadata.name; `default-product-*` for defaultSecurityEnabled's). */
  policy: string;
  /** The product whose limits it counts, or whose requests alone it runs for (an APIProduct's templateRefs). */
  product?: string;
  /** The operation set whose limits it counts (useQuotaConfigInAPIProduct). */
  operationSet?: string;
  /** The template entry's CEL condition: the quota applies only to requests it holds for. */
  condition?: string;
}

/** An operation set's limit, read through the first policy that enforces it. Fields after resetAt were added later. */
export interface LimitReport {
  limit: number;
  interval: number;
  timeUnit: TimeUnit;
  /** null when the counter store could not answer (failOpen), or see `note`. */
  used: number | null;
  remaining: number | null;
  resetAt: string;
  /** The enforcing policy; absent when none on this gateway enforces the limit (`note` says so). */
  policy?: string;
  window?: QuotaWindowType;
  identifier?: string;
  condition?: string;
  note?: string;
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
      /** The InferenceObjectives callers may name; null: any. */
      objectives: string[] | null;
      quota: LimitReport | null;
      llmTokenQuota: (LimitReport & { countOn: CountOn }) | null;
    }[];
  }[];
  /** Every quota counter that applies to this key's requests, in the order the policies run. */
  quotas: QuotaEntry[];
}

/** Every quota policy's entries for this key: product limits per operation set, own limits once (per product when product-owned). */
async function quotaEntries(ctx: RequestContext, flow: CompiledFlow, key: KeyRecord): Promise<QuotaEntry[]> {
  const out: QuotaEntry[] = [];
  for (const { policy, product: only, condition } of flow.placements) {
    if (!policy.usage) continue;
    const products = only === null ? key.products : key.products.filter((p) => p.name === only);
    const states: ApimState[] = policy.needsApiKey
      ? products.flatMap((product) => product.operationSets.map((operationSet) => ({ key, product, operationSet })))
      : only === null
        ? [{ key }]
        : products.map((product) => ({ key, product }));
    for (const state of states) {
      const usage = await policy.usage(ctx, state);
      if (!usage) continue;
      out.push({
        policy: policy.name,
        ...(state.product && { product: state.product.name }),
        ...(state.operationSet && { operationSet: state.operationSet.name }),
        ...(condition !== null && { condition }),
        ...usage,
      });
    }
  }
  return out;
}

function limitReport(limit: CompiledQuota, entry: QuotaEntry | undefined, now: number): LimitReport {
  const { limit: n, interval, timeUnit } = limit;
  if (!entry) {
    const resetAt = new Date(limit.windowAt(now).endMs).toISOString();
    return { limit: n, interval, timeUnit, used: null, remaining: null, resetAt, note: 'no policy on this gateway enforces this limit' };
  }
  const { used, remaining, resetAt, policy, window, identifier, condition, note } = entry;
  return { limit: n, interval, timeUnit, used, remaining, resetAt, policy, window, identifier, ...(condition && { condition }), ...(note && { note }) };
}

function setReport(set: OperationSetGrant, product: string, quotas: readonly QuotaEntry[], now: number) {
  const first = (kind: QuotaEntry['kind']) => quotas.find((q) => q.kind === kind && q.product === product && q.operationSet === set.name);
  const tokens = set.llmTokenQuota;
  return {
    name: set.name,
    models: set.models ? [...set.models] : null,
    objectives: set.objectives ? [...set.objectives] : null,
    quota: set.quota ? limitReport(set.quota, first('Quota'), now) : null,
    llmTokenQuota: tokens ? { ...limitReport(tokens, first('LLMTokenQuota'), now), countOn: tokens.countOn } : null,
  };
}

/**
 * Runs the flow's credential steps (so the same faults apply), then asks every quota policy that would run for this
 * key's requests what its counter holds. A quota counted per something only a request carries (its model, say) is
 * listed with `used: null` and a note.
 */
export async function quotaReport(ctx: RequestContext, flow: CompiledFlow, now: number): Promise<QuotaReport> {
  // The request's own state: its usage record names the key's app and developer, as any authenticated request's does.
  const state = (ctx.apim ??= { phases: flow.phases });
  for (const step of flow.phases.authenticate ?? []) await step(ctx, state);
  const key = state.key;
  if (!key) throw policyFault(401, VERIFY_API_KEY_FAULTS.failedToResolveApiKey, 'This report needs an API key');
  const quotas = await quotaEntries(ctx, flow, key);
  return {
    keyId: key.keyId,
    app: { id: key.appId, name: key.appName },
    developer: { id: key.developerId, email: key.developerEmail },
    products: key.products.map((product) => ({
      name: product.name,
      status: product.status,
      operationSets: product.operationSets.map((set) => setReport(set, product.name, quotas, now)),
    })),
    quotas,
  };
}
