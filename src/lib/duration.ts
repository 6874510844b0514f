// Durations in manifests are strings like "500ms", "1s", "2m", "1h"; everything inside tollgate uses milliseconds.
import { z } from 'zod';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/** parseDuration('1.5s') === 1500; throws on anything else. */
export function parseDuration(text: string): number {
  const m = PATTERN.exec(text.trim());
  if (!m) throw new Error(`invalid duration "${text}" (expected e.g. 500ms, 1s, 2m, 1h)`);
  return Number(m[1]) * UNIT_MS[m[2]];
}

/**
 * The longest duration a timer may be given, rounded down to a value a manifest can say: Node fires a setTimeout
 * longer than 2^31-1 ms (24.8 days) after 1 ms, so `responseTimeout: 30d`, meant as "no limit", failed every request.
 */
export const MAX_TIMER_DURATION = '24d';
export const MAX_TIMER_MS = parseDuration(MAX_TIMER_DURATION);

/**
 * A zod field that accepts "500ms"-style strings of any length and yields milliseconds: for ages and lifetimes that
 * are compared with the clock (analytics retention, token lifetimes), never handed to a timer.
 */
export const longDurationMs = z.string().transform((text, ctx) => {
  try {
    return parseDuration(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

/** A zod field that accepts "500ms"-style strings up to 24d and yields milliseconds: what a timer can wait. */
export const durationMs = longDurationMs.pipe(z.number().max(MAX_TIMER_MS, `must be at most ${MAX_TIMER_DURATION} (the longest a timer can wait)`));

/**
 * durationMs of at least `min`, for deadlines and intervals where 0 would not mean "off" but "at once" (every request
 * timed out, scrapes back to back).
 * @example durationMsAtLeast('1h')
 */
export function durationMsAtLeast(min: string) {
  return durationMs.pipe(z.number().min(parseDuration(min), `must be at least ${min} (0 does not turn it off)`));
}

/**
 * A duration a timer waits where 0 would not mean "off" but "at once" (a 0 response timeout failed every request, a
 * 0 flush interval flushes back to back): 1ms to 24d.
 */
export const timerMs = durationMsAtLeast('1ms');

/** timerMs with a default (zod 4 returns a default as it is, so it is given in milliseconds). */
export function timerMsOr(def: string) {
  return timerMs.default(parseDuration(def));
}
