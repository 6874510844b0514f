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

/** A zod field that accepts "500ms"-style strings and yields milliseconds. */
export const durationMs = z.string().transform((text, ctx) => {
  try {
    return parseDuration(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});
