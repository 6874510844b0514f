// How a Quota counts, chosen once per policy: the window type (fixed windows, rolling, flexi) times the counting mode
// (count and enforce, countOnly, enforceOnly), each one atomic counter-store call.
import type { CounterStore } from '../../../store/counters/counter-store.js';
import type { CounterGuard } from '../../counter-guard.js';
import { windowKey } from '../../counter-keys.js';
import type { CompiledQuota } from '../../identity.js';
import { periodMs, storeWindowMs } from '../../quota-window.js';

export type WindowType = 'fixed' | 'rollingwindow' | 'flexi';
export type CountMode = 'both' | 'countOnly' | 'enforceOnly';

export interface QuotaCount {
  allowed: boolean;
  remaining: number;
  resetAtMs: number;
}

/** Counts `weight` against `quota` on the counter `base` at `now`; undefined when the store failed open. */
export type CountQuota = (base: string, weight: number, quota: CompiledQuota, now: number) => Promise<QuotaCount | undefined>;

interface Window {
  /** Adds `amount` only if the count stays within `limit` (amount 0 reads the count). */
  consume(s: CounterStore, amount: number, limit: number): Promise<{ allowed: boolean; count: number; resetAtMs: number }>;
  /** Adds `amount` whatever the limit. */
  add(s: CounterStore, amount: number): Promise<{ count: number; resetAtMs: number }>;
}

function windowOf(type: WindowType, base: string, quota: CompiledQuota, now: number): Window {
  if (type === 'rollingwindow') {
    const period = periodMs(quota.interval, quota.timeUnit);
    return {
      consume: (s, amount, limit) => s.consumeRolling(base, amount, limit, period, now),
      add: (s, amount) => s.consumeRolling(base, amount, Number.MAX_SAFE_INTEGER, period, now),
    };
  }
  if (type === 'flexi') {
    // The window starts at the identifier's first request: the store keeps an existing window until it ends,
    // and a new one made now with windowMs = now + period ends one period from now.
    const end = now + periodMs(quota.interval, quota.timeUnit);
    return {
      consume: (s, amount, limit) => s.consume(base, amount, limit, end, now),
      add: async (s, amount) => ({ count: await s.adjust(base, amount, end, now), resetAtMs: end }),
    };
  }
  const w = quota.windowAt(now);
  const key = windowKey(base, w.startMs);
  const windowMs = storeWindowMs(w);
  return {
    consume: (s, amount, limit) => s.consume(key, amount, limit, windowMs, now),
    add: async (s, amount) => ({ count: await s.adjust(key, amount, windowMs, now), resetAtMs: w.endMs }),
  };
}

export function compileQuotaCount(counters: CounterGuard, type: WindowType, mode: CountMode): CountQuota {
  switch (mode) {
    case 'both':
      return (base, weight, quota, now) =>
        counters.call((s) => windowOf(type, base, quota, now).consume(s, weight, quota.limit)).then(
          (r) => r && { allowed: r.allowed, remaining: Math.max(0, quota.limit - r.count), resetAtMs: r.resetAtMs },
        );
    case 'enforceOnly':
      // Reads the count (an amount of 0 never changes it) and refuses what would not fit; a countOnly policy counts.
      return (base, weight, quota, now) =>
        counters.call((s) => windowOf(type, base, quota, now).consume(s, 0, quota.limit)).then(
          (r) => r && { allowed: r.count + weight <= quota.limit, remaining: Math.max(0, quota.limit - r.count), resetAtMs: r.resetAtMs },
        );
    case 'countOnly':
      return (base, weight, quota, now) =>
        counters.call((s) => windowOf(type, base, quota, now).add(s, weight)).then(
          (r) => r && { allowed: true, remaining: Math.max(0, quota.limit - r.count), resetAtMs: r.resetAtMs },
        );
  }
}
