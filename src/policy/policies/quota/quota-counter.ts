// How a Quota counts, chosen once per policy: the window type (fixed windows, rolling, flexi) times the counting mode
// (count and enforce, countOnly, enforceOnly), each one atomic counter-store call; and how the quota report reads
// the same counter without counting.
import { andThen } from '../../../lib/maybe-promise.js';
import type { MaybePromise } from '../../../store/caches/cache-store.js';
import type { CounterStore, WindowResult } from '../../../store/counters/counter-store.js';
import type { CounterGuard } from '../../counter-guard.js';
import { periodKey, windowKey, windowKeys } from '../../counter-keys.js';
import type { CompiledQuota } from '../../identity.js';
import { periodMs, storeWindowMs, type QuotaWindow } from '../../quota-window.js';
import type { QuotaReading, QuotaWindowType } from '../../quota-usage.js';

export type WindowType = QuotaWindowType;
export type CountMode = 'both' | 'countOnly' | 'enforceOnly';

/** What a count left: the quota's remaining is its limit less `count`. */
export interface QuotaCount {
  allowed: boolean;
  count: number;
  resetAtMs: number;
}

/**
 * Counts `weight` against `quota` on the counter `base` at `now`; undefined when the store failed open. A promise only
 * when the store answered with one.
 */
export type CountQuota = (base: string, weight: number, quota: CompiledQuota, now: number) => MaybePromise<QuotaCount | undefined>;

interface Window {
  /** Adds `amount` only if the count stays within `limit` (amount 0 reads the count). */
  consume(s: CounterStore, amount: number, limit: number): MaybePromise<QuotaCount>;
  /** Adds `amount` whatever the limit. */
  add(s: CounterStore, amount: number): MaybePromise<QuotaCount>;
  /** Reads the count without changing anything (not even starting a flexi window). */
  read(s: CounterStore): MaybePromise<QuotaReading>;
  /** When the count resets at the latest, for any identifier. */
  latestResetMs: number;
}

/** A fixed window's counter key for `base` (windowKey, or the remembered windowKeys of one policy). */
type KeyOf = (base: string, window: QuotaWindow) => string;

function windowOf(type: WindowType, base: string, quota: CompiledQuota, now: number, keyOf: KeyOf): Window {
  if (type === 'rollingwindow') {
    const period = periodMs(quota.interval, quota.timeUnit);
    const key = periodKey(base, type, period);
    const latestResetMs = now + period;
    // The store dates an empty window's reset now; a request counted now would leave it one period from now.
    const dated = (r: WindowResult): WindowResult => (r.count > 0 ? r : { ...r, resetAtMs: latestResetMs });
    const consume = (s: CounterStore, amount: number, limit: number) => andThen(s.consumeRolling(key, amount, limit, period, now), dated);
    return {
      consume,
      add: (s, amount) => s.consumeRolling(key, amount, Number.MAX_SAFE_INTEGER, period, now),
      // A rolling consume of 0 only drops what has left the window.
      read: (s) => consume(s, 0, Number.MAX_SAFE_INTEGER),
      latestResetMs,
    };
  }
  if (type === 'flexi') {
    // The window starts at the identifier's first request: the store keeps an existing window until it ends,
    // and a new one made now with windowMs = now + period ends one period from now.
    const period = periodMs(quota.interval, quota.timeUnit);
    const key = periodKey(base, type, period);
    const end = now + period;
    return {
      consume: (s, amount, limit) => s.consume(key, amount, limit, end, now),
      // A consume that cannot be refused: unlike adjust, it answers with the window's end (`end` is only a new one's).
      add: (s, amount) => s.consume(key, amount, Number.MAX_SAFE_INTEGER, end, now),
      // A consume of 0 would start a window now, so only a window that holds a count (current at `now`, which the
      // consume is given too) is asked for its end.
      read: (s) => andThen(s.get(key, now), (count) => (count === 0 ? { count, resetAtMs: end } : s.consume(key, 0, Number.MAX_SAFE_INTEGER, end, now))),
      latestResetMs: end,
    };
  }
  const w = quota.windowAt(now);
  const key = keyOf(base, w);
  const windowMs = storeWindowMs(w);
  return {
    consume: (s, amount, limit) => s.consume(key, amount, limit, windowMs, now),
    add: (s, amount) => andThen(s.adjust(key, amount, windowMs, now), (count) => ({ allowed: true, count, resetAtMs: w.endMs })),
    read: (s) => andThen(s.get(key, now), (count) => ({ count, resetAtMs: w.endMs })),
    latestResetMs: w.endMs,
  };
}

/** Reads what `quota` holds on the counter `base` at `now`, exactly where compileQuotaCount counts it. */
export interface QuotaRead {
  /** Undefined when the store failed open. */
  read(base: string, quota: CompiledQuota, now: number): MaybePromise<QuotaReading | undefined>;
  /** When the count resets at the latest, whichever identifier: the window's end, or one period from now. */
  latestResetMs(quota: CompiledQuota, now: number): number;
}

export function compileQuotaRead(counters: CounterGuard, type: WindowType): QuotaRead {
  return {
    read: (base, quota, now) => counters.call((s) => windowOf(type, base, quota, now, windowKey).read(s)),
    latestResetMs: (quota, now) => windowOf(type, '', quota, now, windowKey).latestResetMs,
  };
}

export function compileQuotaCount(counters: CounterGuard, type: WindowType, mode: CountMode): CountQuota {
  const keyOf = windowKeys();
  switch (mode) {
    case 'both':
      return (base, weight, quota, now) => counters.call((s) => windowOf(type, base, quota, now, keyOf).consume(s, weight, quota.limit));
    case 'enforceOnly':
      // Reads the count (an amount of 0 never changes it) against the room the request needs (quota.ts refuses a
      // weight above the limit first), so a refusal's reset is when the request fits: against the whole limit, a
      // rolling window said when its oldest slot left, too little for a weighted request. A countOnly policy counts.
      return (base, weight, quota, now) => counters.call((s) => windowOf(type, base, quota, now, keyOf).consume(s, 0, quota.limit - weight));
    case 'countOnly':
      return (base, weight, quota, now) => counters.call((s) => windowOf(type, base, quota, now, keyOf).add(s, weight));
  }
}
