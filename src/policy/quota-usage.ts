// What a quota policy's counter holds for one caller, read without counting: the entries of GET /v1/tollgate/quota.
// Each quota policy reads its own counter (its own key and window functions); this file only decides whether the
// report can know which counter a request would use, from where the policy's identifier comes from.
import type { CountOn, TimeUnit } from '../config/apim-kinds.js';
import type { RequestContext } from '../gateway/context.js';
import type { ApimState } from './types.js';
import { variableSource, type Variable } from './variables.js';

export type QuotaWindowType = 'fixed' | 'rollingwindow' | 'flexi';

export interface QuotaUsage {
  /** The policy's manifest kind. */
  kind: 'Quota' | 'LLMTokenQuota';
  limit: number;
  interval: number;
  timeUnit: TimeUnit;
  /** Calendar-aligned (or from a calendar startTime) fixed windows, a rolling window, or flexi (from the first request). */
  window: QuotaWindowType;
  countOn?: CountOn;
  /** The variable the policy counts per (`developer.app.id` unless it names another). */
  identifier: string;
  /** null when the counter store could not answer (failOpen), or when the counter depends on the request (see `note`). */
  used: number | null;
  remaining: number | null;
  /**
   * When the count resets: the window's end; for a rolling window, when the oldest counted request leaves it. When
   * nothing is counted yet (rolling, flexi) or the counter is unknown, the latest it can be.
   */
  resetAt: string;
  /** Why `used` is null, or how the counter was chosen. */
  note?: string;
}

/** A counter's state at one moment. */
export interface QuotaReading {
  count: number;
  resetAtMs: number;
}

/** A quota's figures as its policy knows them, and how to find and read the caller's counter. */
export interface UsageInput extends Pick<QuotaUsage, 'kind' | 'limit' | 'interval' | 'timeUnit' | 'window' | 'countOn' | 'identifier'> {
  /** The identifier variable, compiled: undefined when unset. */
  variable: Variable;
  /** The policy's own identifier value for this request (what its admit phase counts under). */
  identify(ctx: RequestContext, state: ApimState): string;
  /** Reads the counter of identifier value `id` without changing it; undefined when the store failed open. */
  read(id: string): Promise<QuotaReading | undefined>;
  /** When the count resets at the latest, whichever counter it is. */
  latestResetMs: number;
}

/**
 * The usage of one quota for the caller whose key is in `state`. Identifiers of the key (the default) are exact;
 * a header, query parameter or the client address is read from the report request itself, which the note says;
 * the model, path or a flow variable only a real request carries leaves `used` null with a note.
 */
export async function quotaUsage(ctx: RequestContext, state: ApimState, q: UsageInput): Promise<QuotaUsage> {
  const { kind, limit, interval, timeUnit, window, identifier } = q;
  const figures = { kind, limit, interval, timeUnit, window, ...(q.countOn && { countOn: q.countOn }), identifier };
  const source = variableSource(identifier);
  // apiproduct.*: known when the report asks about the product (and operation set) a request would be entitled by.
  const unknown = source === 'request' || (source === 'entitlement' && q.variable(ctx, state) === undefined);
  if (unknown) {
    return {
      ...figures,
      used: null,
      remaining: null,
      resetAt: new Date(q.latestResetMs).toISOString(),
      note: `counted per ${identifier}, which only the request itself tells: this report cannot know which counter a request would use`,
    };
  }
  const r = await q.read(q.identify(ctx, state));
  return {
    ...figures,
    used: r?.count ?? null,
    remaining: r ? Math.max(0, limit - r.count) : null,
    resetAt: new Date(r?.resetAtMs ?? q.latestResetMs).toISOString(),
    ...(source === 'caller' && { note: `counted per ${identifier}: read for the value this report request carries (send it as your requests do)` }),
  };
}
