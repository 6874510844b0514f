// An open-loop load at a fixed request rate, timing every request with sub-millisecond precision
// (autocannon reports whole milliseconds, too coarse for "adds ≤ 1 ms p99").
import { Pool } from 'undici';

/** Failed requests by kind (`status 503`, `timeout`, an error code) → count. */
export type Failures = Record<string, number>;

export function countFailure(into: Failures, kind: string, n = 1): void {
  if (n > 0) into[kind] = (into[kind] ?? 0) + n;
}

/** `status 503 ×12, UND_ERR_SOCKET ×1` over several measurements; empty when nothing failed. */
export function describeFailures(all: readonly Failures[]): string {
  const total: Failures = {};
  for (const f of all) for (const kind in f) countFailure(total, kind, f[kind]);
  return Object.entries(total)
    .sort((a, b) => b[1] - a[1])
    .map(([kind, n]) => `${kind} ×${n}`)
    .join(', ');
}

export interface LatencySummary {
  sent: number;
  errors: number;
  failures: Failures;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export async function fixedRateLatency(url: string, path: string, body: string, rate: number, seconds: number, headers: Record<string, string> = {}): Promise<LatencySummary> {
  const pool = new Pool(url, { connections: 128 });
  const latencies: number[] = [];
  let errors = 0;
  const failures: Failures = {};
  let sent = 0;
  const total = Math.round(rate * seconds);
  const started = performance.now();
  const inflight: Promise<void>[] = [];
  await new Promise<void>((resolve) => {
    const tick = () => {
      // Send whatever the schedule says is due by now: the rate holds even when timers fire late.
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
      while (sent < due) {
        sent++;
        const t0 = performance.now();
        inflight.push(
          pool
            .request({ path, method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body })
            .then(async (r) => {
              await r.body.dump();
              if (r.statusCode >= 400) {
                errors++;
                countFailure(failures, `status ${r.statusCode}`);
              }
              latencies.push(performance.now() - t0);
            })
            .catch((err: { code?: string }) => {
              errors++;
              countFailure(failures, err.code ?? 'error');
            }),
        );
      }
      if (sent >= total) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  await Promise.all(inflight);
  await pool.close();
  latencies.sort((a, b) => a - b);
  return { sent, errors, failures, p50: percentile(latencies, 50), p90: percentile(latencies, 90), p99: percentile(latencies, 99), max: latencies[latencies.length - 1] ?? NaN };
}
