// `tollgate bench routing`: a time-scaled simulated fleet behind a real gateway (or, with --virtual, the gateway's pool
// state and the engines on one virtual clock), one workload at a time, comparing routing strategies (round-robin and
// least-requests sent at once, tollgate's default picker with flow control; round-robin behind that flow control on
// request) over a Poisson arrival-rate sweep.
import { barChartSvg, table, writeJson, writeSvg, type Row } from './report.js';
import { startProcessTarget } from './routing-processes.js';
import { byPriority, goodput, summarize, type Summary } from './routing-stats.js';
import { BASELINE, DEFAULT_STRATEGIES, FLOW_CONTROL_BASELINE, STRATEGY_NAMES, strategies, type StrategyName } from './routing-strategies.js';
import { WORKLOAD_DEFS, WORKLOADS, type PriorityClass, type WorkloadName } from './workloads.js';
import type { TargetSpec } from './routing-target.js';
import { startVirtualTarget } from './routing-virtual.js';

export interface RoutingOptions {
  quick?: boolean;
  /** Gateway state and engines in this process on a virtual clock (routing-virtual.ts) instead of child processes in real time. */
  virtual?: boolean;
  workloads?: WorkloadName[];
  /** The strategies to compare; round-robin, the baseline of every ratio, always runs. Default: DEFAULT_STRATEGIES. */
  strategies?: StrategyName[];
  json?: string;
  svg?: string;
  timeScale?: number;
  endpoints?: number;
  seed?: number;
  log?: (line: string) => void;
  /** Where the progress line goes (stderr, rewritten in place, by default). */
  progress?: (line: string) => void;
}

/**
 * Simulated time runs 4× real time. The limit is not jitter (the shortest simulated latencies, a 14 ms decode step
 * and a 40 ms prefill, are 3.5 and 10 ms of real time, above a busy event loop's 1–3 ms lag) but the gateway's
 * share of 2 cores: every decode step is one SSE chunk per running stream through the gateway, and at ×10 the chat
 * workload's knee would be ~80k chunks/s, beyond what one Node process can forward, so the gateway, not the
 * simulated GPUs, would saturate first and every strategy would measure the same proxy bottleneck.
 */
export const DEFAULT_TIME_SCALE = 4;
/** Smaller than vLLM's 256 so the fleet saturates at request rates the gateway and load generator can carry on 2 cores. */
const MAX_NUM_SEQS = 16;
/** 2,048 blocks × 16 tokens: the simulator's default, a 32k-token prefix cache per endpoint. */
const KV_BLOCKS = 2048;
/** Simulated seconds to wait for the last answers of a rate (an 800-token answer takes 13 s); those still open fail. */
const DRAIN_SECONDS = 60;

export interface RoutingPoint {
  workload: WorkloadName;
  strategy: StrategyName;
  rate: number;
  /** Simulated seconds of arrivals. */
  windowSeconds: number;
  summary: Summary;
  priorities: Partial<Record<PriorityClass, Summary>>;
  /** Requests that waited in the gateway's flow-control queue, by priority class and how they left it. */
  queued: Record<string, number>;
  /** Each request was abandoned at its first token (a quick run's unloaded rate): only TTFT was measured. */
  firstTokenOnly?: boolean;
}

/**
 * The critical requests of a loaded rate sent again, alone, at the workload's lowest rate, each abandoned at its first
 * token: the unloaded TTFT of the very requests whose loaded TTFT is compared (the few critical requests of the lowest
 * rate are too few, and shorter, to stand for the prompts of a loaded window).
 */
export interface CriticalReference {
  workload: WorkloadName;
  /** The loaded rate whose critical requests were replayed. */
  rate: number;
  summary: Summary;
}

export interface RoutingResult {
  /** Simulated seconds per real second; null on a virtual clock. */
  timeScale: number | null;
  endpoints: number;
  points: RoutingPoint[];
  criticalReferences: CriticalReference[];
  goodput: { workload: WorkloadName; slo: number; byStrategy: Record<string, number> }[];
}

export async function benchRouting(opts: RoutingOptions = {}): Promise<RoutingResult> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const progress = opts.progress ?? stderrProgress;
  const timeScale = opts.timeScale ?? DEFAULT_TIME_SCALE;
  const endpoints = opts.endpoints ?? 8;
  const seed = opts.seed ?? 1;
  const workloads = opts.workloads ?? WORKLOADS;
  const points: RoutingPoint[] = [];
  const references: CriticalReference[] = [];
  const good: RoutingResult['goodput'] = [];
  const pickers = strategies(MAX_NUM_SEQS);
  const chosen = opts.strategies ?? DEFAULT_STRATEGIES;
  const names = STRATEGY_NAMES.filter((s) => s === BASELINE || chosen.includes(s));

  for (const name of workloads) {
    const w = WORKLOAD_DEFS[name];
    // The quick run measures fewer rates over shorter windows.
    const windowSeconds = opts.quick ? w.windowSeconds / 2 : w.windowSeconds;
    // The quick run measures the unloaded reference and the rate just below the sweep's top (near saturation).
    const rates = opts.quick ? [w.rates[0], w.rates[Math.max(1, w.rates.length - 2)]] : w.rates;
    for (const strategy of names) {
      const spec: TargetSpec = { workload: w, picker: pickers[strategy], endpoints, timeScale, seed, maxNumSeqs: MAX_NUM_SEQS, kvBlocks: KV_BLOCKS, drainSeconds: DRAIN_SECONDS };
      const target = await (opts.virtual ? startVirtualTarget(spec) : startProcessTarget(spec));
      // Unloaded, every strategy sends each request to an idle engine as round-robin does: the unloaded rate is the
      // baseline's and tollgate's alone (so the run stays ≤ 5 min), and one critical reference per loaded rate will do.
      const measured = strategy === BASELINE || strategy === 'tollgate' ? rates : rates.slice(1);
      const referenced = strategy === BASELINE && w.models.some((m) => m.criticality === 'Critical') ? rates.slice(1) : [];
      const runs = [...measured.map((rate) => ({ rate, reference: false })), ...referenced.map((rate) => ({ rate, reference: true }))];
      try {
        for (const [i, { rate, reference }] of runs.entries()) {
          // Between runs the fleet drains, so that they do not overlap; after the last one it is stopped anyway.
          if (i > 0) await target.settle();
          const requests = w.generate(rate, windowSeconds, seed * 1000 + rate);
          if (reference) {
            const spaced = requests.filter((r) => r.priority === 'critical').map((r, k) => ({ ...r, at: k / rates[0] }));
            const outcomes = await target.replay(spaced, (done, total) => progress(`${name} unloaded critical requests of ${rate} req/s: ${done}/${total}`), {
              firstTokenOnly: true,
            });
            references.push({ workload: name, rate, summary: summarize(outcomes, spaced.length / rates[0]) });
            continue;
          }
          // A quick run takes its unloaded reference to the first token: TTFT is all the SLO needs, and waiting for the
          // longest answers to finish was a third of its time.
          const firstTokenOnly = opts.quick === true && rate === rates[0];
          const before = await target.queueCounts();
          const outcomes = await target.replay(requests, (done, total) => progress(`${name} ${strategy} ${rate} req/s: ${done}/${total}`), { firstTokenOnly });
          const after = await target.queueCounts();
          const queued = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]).filter(([, v]) => (v as number) > 0));
          const point: RoutingPoint = { workload: name, strategy, rate, windowSeconds, summary: summarize(outcomes, windowSeconds), priorities: byPriority(outcomes, windowSeconds), queued };
          if (firstTokenOnly) point.firstTokenOnly = true;
          points.push(point);
        }
      } finally {
        await target.stop();
      }
    }
    progress('');
    const base = points.find((p) => p.workload === name && p.strategy === BASELINE && p.rate === rates[0])!;
    const slo = 2 * base.summary.ttftP90;
    const byStrategy = Object.fromEntries(names.map((s) => [s, goodput(points.filter((p) => p.workload === name && p.strategy === s), slo)]));
    good.push({ workload: name, slo, byStrategy });
  }

  const result: RoutingResult = { timeScale: opts.virtual ? null : timeScale, endpoints, points, criticalReferences: references, goodput: good };
  log(report(result));
  writeJson(opts.json ?? 'bench/results/routing.json', result);
  if (opts.svg) writeSvg(opts.svg, chart(result));
  return result;
}

function report(r: RoutingResult): string {
  const ran = STRATEGY_NAMES.filter((s) => r.points.some((p) => p.strategy === s));
  const withFc = ran.includes(FLOW_CONTROL_BASELINE);
  const rows: Row[] = r.points.map((p) => {
    const base = r.points.find((q) => q.workload === p.workload && q.rate === p.rate && q.strategy === BASELINE)!.summary;
    const fc = r.points.find((q) => q.workload === p.workload && q.rate === p.rate && q.strategy === FLOW_CONTROL_BASELINE)?.summary;
    const s = p.summary;
    const queued = Object.entries(p.queued).map(([k, v]) => `${k}:${v}`).join(' ');
    return {
      workload: p.workload,
      strategy: p.strategy,
      'req/s': p.rate,
      sent: s.sent,
      'ttft p50': s.ttftP50,
      'ttft p90': s.ttftP90,
      'ttft p99': s.ttftP99,
      'e2e p99': p.firstTokenOnly ? null : s.e2eP99,
      'tok/s': p.firstTokenOnly ? null : s.outputTokensPerS,
      ntpot: p.firstTokenOnly ? null : s.ntpot,
      'p90 ×rr': ratio(s.ttftP90, base.ttftP90),
      'e2e99 ×rr': p.firstTokenOnly ? null : ratio(s.e2eP99, base.e2eP99),
      'p90 ×fc': fc ? ratio(s.ttftP90, fc.ttftP90) : null,
      'e2e99 ×fc': fc ? ratio(s.e2eP99, fc.e2eP99) : null,
      failed: s.failed,
      shed: shedCounts(p) || s.shed,
      queued: queued || '-',
    };
  });
  const fcCols = withFc ? ['p90 ×fc', 'e2e99 ×fc'] : [];
  const cols = ['workload', 'strategy', 'req/s', 'sent', 'ttft p50', 'ttft p90', 'ttft p99', 'e2e p99', 'tok/s', 'ntpot', 'p90 ×rr', 'e2e99 ×rr', ...fcCols, 'failed', 'shed', 'queued'];
  const goodRows: Row[] = r.goodput.map((g) => ({
    workload: g.workload,
    'slo (p90 ttft, s)': g.slo,
    ...Object.fromEntries(ran.map((s) => [s, g.byStrategy[s]])),
    'tollgate ×rr': ratio(g.byStrategy.tollgate, g.byStrategy[BASELINE]),
    'tollgate ×fc': ratio(g.byStrategy.tollgate, g.byStrategy[FLOW_CONTROL_BASELINE]),
  }));
  const windows = [...new Map(r.points.map((p) => [p.workload, p.windowSeconds])).entries()].map(([w, s]) => `${w} ${s}`).join(', ');
  const critical = criticalRows(r);
  return [
    `routing: ${r.endpoints} simulated endpoints ${r.timeScale === null ? 'on a virtual clock' : `at ×${r.timeScale}`}; simulated s of arrivals per rate: ${windows}; latencies in simulated seconds`,
    table(rows, cols),
    '',
    'goodput (highest req/s with p90 TTFT under the SLO and nothing failed)',
    table(goodRows, ['workload', 'slo (p90 ttft, s)', ...ran, 'tollgate ×rr', ...(withFc ? ['tollgate ×fc'] : [])]),
    ...(critical.length
      ? [
          '',
          'critical TTFT p99 against the unloaded TTFT p99 of the same critical requests (sent again alone at the lowest rate, each until its first token)',
          table(critical, ['workload', 'strategy', 'req/s', 'critical p99', 'same unloaded p99', '×unloaded', 'shed']),
        ]
      : []),
  ].join('\n');
}

/** "crit:0/66 stan:0/91 shed:19/92": shed of sent, per priority class. */
function shedCounts(p: RoutingPoint): string {
  return Object.entries(p.priorities).map(([k, v]) => `${k.slice(0, 4)}:${v.shed}/${v.sent}`).join(' ');
}

/** For workloads with priorities: critical TTFT p99 at each loaded rate against the same requests' unloaded p99. */
function criticalRows(r: RoutingResult): Row[] {
  const rows: Row[] = [];
  for (const p of r.points) {
    const crit = p.priorities.critical;
    const reference = r.criticalReferences.find((c) => c.workload === p.workload && c.rate === p.rate);
    if (!crit || !reference) continue;
    rows.push({
      workload: p.workload,
      strategy: p.strategy,
      'req/s': p.rate,
      'critical p99': crit.ttftP99,
      'same unloaded p99': reference.summary.ttftP99,
      '×unloaded': ratio(crit.ttftP99, reference.summary.ttftP99),
      shed: shedCounts(p),
    });
  }
  return rows;
}

function ratio(a: number, b: number): number | null {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return Math.round((a / b) * 1000) / 1000;
}

/** p90 TTFT at each workload's highest rate, per strategy. */
function chart(r: RoutingResult): string {
  const groups = [...new Set(r.points.map((p) => p.workload))].map((w) => {
    const top = Math.max(...r.points.filter((p) => p.workload === w).map((p) => p.rate));
    const bars = r.points.filter((p) => p.workload === w && p.rate === top).map((p) => ({ name: p.strategy, value: Number.isFinite(p.summary.ttftP90) ? p.summary.ttftP90 : 0 }));
    return { label: `${w} @ ${top} req/s`, bars };
  });
  return barChartSvg('TTFT p90 at the highest rate (simulated s, lower is better)', 's', groups);
}

/** The progress line on stderr, rewritten in place; an empty line clears it. */
function stderrProgress(line: string): void {
  process.stderr.write(line === '' ? '\r\x1b[K' : `\r${line}   `);
}
