// Quota windows (Apigee's timeUnit × interval): aligned to the calendar (UTC) by default, or repeating from a calendar
// quota's startTime. Compiled once per policy into a function of the clock.
import type { TimeUnit } from '../config/apim-kinds.js';

export interface QuotaWindow {
  startMs: number;
  endMs: number;
}

export type WindowAt = (nowMs: number) => QuotaWindow;

const UNIT_MS: Record<Exclude<TimeUnit, 'month'>, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000, week: 604_800_000 };
/** 1970-01-01 was a Thursday: weeks start on Mondays, four days later. */
const FIRST_MONDAY_MS = 4 * 86_400_000;

/** The length of one window (a month counts as 30 days: for rolling windows and flexi quotas). */
export function periodMs(interval: number, unit: TimeUnit): number {
  return interval * (unit === 'month' ? 30 * 86_400_000 : UNIT_MS[unit]);
}

/** The same instant `months` calendar months later, the day clamped to the target month's length (31 Jan + 1 = 28/29 Feb). */
function addMonths(ms: number, months: number): number {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth() + months;
  const lastDay = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  return Date.UTC(y, m, Math.min(d.getUTCDate(), lastDay), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds());
}

function monthWindows(interval: number, originMs: number): WindowAt {
  const origin = new Date(originMs);
  const originMonth = origin.getUTCFullYear() * 12 + origin.getUTCMonth();
  return (now) => {
    const d = new Date(now);
    let k = Math.floor((d.getUTCFullYear() * 12 + d.getUTCMonth() - originMonth) / interval);
    let start = addMonths(originMs, k * interval);
    // Within the first days of a month the window may still be the previous one (startTime on the 15th, say).
    if (start > now) start = addMonths(originMs, --k * interval);
    return { startMs: start, endMs: addMonths(originMs, (k + 1) * interval) };
  };
}

/**
 * The windowMs to hand the counter store for this window. The store aligns fixed windows to multiples of windowMs
 * since the epoch, so passing the window's own end makes the store's window [0, end): it ends exactly when ours does,
 * whatever our alignment (Mondays, calendar months, a startTime). Counter keys carry the window's start and end
 * (windowKey), so a late adjustment always lands in the window it belongs to, and the store's end is always ours.
 */
export function storeWindowMs(window: QuotaWindow): number {
  return window.endMs;
}

/** Remembers the current window, so the calendar arithmetic runs once per window rather than per request. */
function cached(compute: WindowAt): WindowAt {
  let last: QuotaWindow = { startMs: 0, endMs: 0 };
  return (now) => (now >= last.startMs && now < last.endMs ? last : (last = compute(now)));
}

/**
 * windowsOf(1, 'hour') → windows at the top of each UTC hour; windowsOf(1, 'month', Date.parse('2025-01-15T00:00:00Z'))
 * → windows from the 15th to the 15th. Without a start, weeks begin on Monday and months on the 1st (UTC).
 */
export function windowsOf(interval: number, unit: TimeUnit, startMs?: number): WindowAt {
  if (unit === 'month') return cached(monthWindows(interval, startMs ?? 0));
  const period = interval * UNIT_MS[unit];
  const origin = startMs ?? (unit === 'week' ? FIRST_MONDAY_MS : 0);
  return cached((now) => {
    const start = origin + Math.floor((now - origin) / period) * period;
    return { startMs: start, endMs: start + period };
  });
}
