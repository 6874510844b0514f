// Apigee's <Rate>: "10ps" or "600pm" → how many per second or minute, and the smoothed interval between two.
export interface Rate {
  count: number;
  periodMs: number;
  /** periodMs / count: 5ps is one every 200 ms. */
  intervalMs: number;
}

/** parseRate('600pm') → { count: 600, periodMs: 60000, intervalMs: 100 }; the schema has checked the shape. */
export function parseRate(rate: string): Rate {
  const count = Number(rate.slice(0, -2));
  const periodMs = rate.endsWith('ps') ? 1000 : 60_000;
  return { count, periodMs, intervalMs: periodMs / count };
}
