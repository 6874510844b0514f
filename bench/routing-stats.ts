// Summaries of one routing-benchmark measurement: latency percentiles, throughput, shed and failed counts per priority.
import { percentile } from './fixed-rate.js';
import type { Outcome } from './routing-load.js';
import type { PriorityClass } from './workloads.js';

export interface Summary {
  sent: number;
  ok: number;
  /** 429s: shed by the gateway (or refused by a full engine queue). */
  shed: number;
  /** Anything else that did not complete (503 after the flow-control wait, errors, unfinished at the drain deadline). */
  failed: number;
  /** Simulated seconds; failures count as infinitely slow, sheds are left out. */
  ttftP50: number;
  ttftP90: number;
  ttftP99: number;
  e2eP99: number;
  /** Output tokens per simulated second over the window. */
  outputTokensPerS: number;
  /** Mean end-to-end seconds per output token (the Inference Extension's NTPOT). */
  ntpot: number;
}

export function summarize(outcomes: Outcome[], windowSeconds: number): Summary {
  const served = outcomes.filter((o) => o.status !== 429);
  const ok = served.filter((o) => o.status === 200 && Number.isFinite(o.e2e));
  const ttft = served.map((o) => (Number.isFinite(o.ttft) ? o.ttft : Infinity)).sort((a, b) => a - b);
  const e2e = served.map((o) => (Number.isFinite(o.e2e) ? o.e2e : Infinity)).sort((a, b) => a - b);
  const tokens = ok.reduce((a, o) => a + o.outputTokens, 0);
  const ntpot = ok.filter((o) => o.outputTokens > 0).map((o) => o.e2e / o.outputTokens);
  return {
    sent: outcomes.length,
    ok: ok.length,
    shed: outcomes.length - served.length,
    failed: served.length - ok.length,
    ttftP50: percentile(ttft, 50),
    ttftP90: percentile(ttft, 90),
    ttftP99: percentile(ttft, 99),
    e2eP99: percentile(e2e, 99),
    outputTokensPerS: tokens / windowSeconds,
    ntpot: ntpot.length ? ntpot.reduce((a, b) => a + b, 0) / ntpot.length : NaN,
  };
}

/** The same summary for each priority class present. */
export function byPriority(outcomes: Outcome[], windowSeconds: number): Partial<Record<PriorityClass, Summary>> {
  const out: Partial<Record<PriorityClass, Summary>> = {};
  for (const p of ['critical', 'standard', 'sheddable'] as const) {
    const mine = outcomes.filter((o) => o.priority === p);
    if (mine.length > 0) out[p] = summarize(mine, windowSeconds);
  }
  return out;
}

/**
 * The highest rate whose p90 TTFT stays under `slo` (2× the baseline's unloaded p90, the same bar for every
 * strategy); 0 when none does. Rates are the sweep's, so goodput is as coarse as the sweep.
 */
export function goodput(points: { rate: number; summary: Summary }[], slo: number): number {
  let best = 0;
  for (const p of points) if (p.summary.ttftP90 <= slo && p.summary.failed === 0) best = Math.max(best, p.rate);
  return best;
}
