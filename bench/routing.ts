// `tollgate bench routing`: a time-scaled simulated fleet behind a real gateway, one workload at a time, comparing
// routing strategies (round-robin and least-requests sent at once, round-robin behind tollgate's flow control, tollgate's
// default picker with flow control) over a Poisson arrival-rate sweep.
import { fileURLToPath } from 'node:url';
import { extname } from 'node:path';
import { freePortRange } from '../src/lib/ports.js';
import { startChild } from './processes.js';
import { barChartSvg, table, writeJson, writeSvg, type Row } from './report.js';
import { replay } from './routing-load.js';
import { byPriority, goodput, summarize, type Summary } from './routing-stats.js';
import { BASELINE, FLOW_CONTROL_BASELINE, STRATEGY_NAMES, strategies, type StrategyName } from './routing-strategies.js';
import { WORKLOAD_DEFS, WORKLOADS, type PriorityClass, type WorkloadName } from './workloads.js';
import type { RoutingFleetArgs } from './routing-fleet.js';
import type { RoutingServerArgs } from './routing-server.js';

export interface RoutingOptions {
  quick?: boolean;
  workloads?: WorkloadName[];
  /** A subset to compare (the two baselines always run: every ratio is against them); all by default. */
  strategies?: StrategyName[];
  json?: string;
  svg?: string;
  timeScale?: number;
  endpoints?: number;
  seed?: number;
  log?: (line: string) => void;
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

export interface RoutingPoint {
  workload: WorkloadName;
  strategy: StrategyName;
  rate: number;
  summary: Summary;
  priorities: Partial<Record<PriorityClass, Summary>>;
  /** Requests that waited in the gateway's flow-control queue, by priority class and how they left it. */
  queued: Record<string, number>;
}

export interface RoutingResult {
  timeScale: number;
  endpoints: number;
  windowSeconds: number;
  points: RoutingPoint[];
  goodput: { workload: WorkloadName; slo: number; byStrategy: Record<string, number> }[];
}

const sibling = (name: string) => fileURLToPath(new URL(`./${name}${extname(fileURLToPath(import.meta.url))}`, import.meta.url));
const SERVER = sibling('routing-server');
const FLEET = sibling('routing-fleet');
const PRIORITY_LABEL: Record<string, PriorityClass> = { '1': 'critical', '0': 'standard', '-1': 'sheddable' };

export async function benchRouting(opts: RoutingOptions = {}): Promise<RoutingResult> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const timeScale = opts.timeScale ?? DEFAULT_TIME_SCALE;
  const endpoints = opts.endpoints ?? 8;
  const seed = opts.seed ?? 1;
  const workloads = opts.workloads ?? WORKLOADS;
  // Real seconds of arrivals per rate; the quick run measures fewer rates over shorter windows.
  const windowReal = opts.quick ? 1.25 : 2.5;
  const windowSeconds = windowReal * timeScale;
  const points: RoutingPoint[] = [];
  const good: RoutingResult['goodput'] = [];
  const pickers = strategies(MAX_NUM_SEQS);
  const names = STRATEGY_NAMES.filter((s) => !opts.strategies || s === BASELINE || s === FLOW_CONTROL_BASELINE || opts.strategies.includes(s));

  for (const name of workloads) {
    const w = WORKLOAD_DEFS[name];
    // The quick run measures the unloaded reference and the rate just below the sweep's top (near saturation).
    const rates = opts.quick ? [w.rates[0], w.rates[Math.max(1, w.rates.length - 2)]] : w.rates;
    for (const strategy of names) {
      const model = w.models.find((m) => m.criticality === undefined)?.target ?? w.models[0].target;
      // Both start at once on known ports: the gateway's scrapes fail until the fleet listens, and recover by themselves.
      const port = await freePortRange(endpoints);
      const fleetArgs: RoutingFleetArgs = { port, endpoints, timeScale, seed, maxNumSeqs: MAX_NUM_SEQS, kvBlocks: KV_BLOCKS, model, ...w.sim };
      const urls = Array.from({ length: endpoints }, (_, i) => `http://127.0.0.1:${port + i}`);
      const args: RoutingServerArgs = { urls, timeScale, picker: pickers[strategy], models: w.models };
      const [fleetStarted, childStarted] = await Promise.allSettled([startChild(FLEET, [JSON.stringify(fleetArgs)], 60_000), startChild(SERVER, [JSON.stringify(args)], 60_000)]);
      if (fleetStarted.status === 'rejected' || childStarted.status === 'rejected') {
        if (fleetStarted.status === 'fulfilled') await fleetStarted.value.stop();
        if (childStarted.status === 'fulfilled') await childStarted.value.stop();
        throw fleetStarted.status === 'rejected' ? fleetStarted.reason : (childStarted as PromiseRejectedResult).reason;
      }
      const fleet = fleetStarted.value;
      const child = childStarted.value;
      const admin = Number(child.lines.find((l) => l.startsWith('ADMIN '))!.slice(6));
      try {
        // Until every endpoint has been scraped the picker has nothing to go on.
        await settle(admin);
        // The unloaded reference is the baseline's and tollgate's alone: unloaded, least-requests and round-robin
        // behind flow control send each request to an idle engine as round-robin does (and the run stays ≤ 5 min).
        for (const rate of strategy === BASELINE || strategy === 'tollgate' ? rates : rates.slice(1)) {
          const requests = w.generate(rate, windowSeconds, seed * 1000 + rate);
          const before = await queueCounts(admin);
          const outcomes = await replay(requests, {
            url: `http://127.0.0.1:${child.port}`,
            timeScale,
            drainMs: (opts.quick ? 3 : 8) * 1000,
            onProgress: (done, total) => process.stderr.write(`\r${name} ${strategy} ${rate} req/s: ${done}/${total}   `),
          });
          const after = await queueCounts(admin);
          const queued = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]).filter(([, v]) => (v as number) > 0));
          points.push({ workload: name, strategy, rate, summary: summarize(outcomes, windowSeconds), priorities: byPriority(outcomes, windowSeconds), queued });
          await settle(admin);
        }
      } finally {
        await child.stop();
        await fleet.stop();
      }
    }
    process.stderr.write('\r\x1b[K');
    const base = points.find((p) => p.workload === name && p.strategy === BASELINE && p.rate === rates[0])!;
    const slo = 2 * base.summary.ttftP90;
    const byStrategy = Object.fromEntries(names.map((s) => [s, goodput(points.filter((p) => p.workload === name && p.strategy === s), slo)]));
    good.push({ workload: name, slo, byStrategy });
  }

  const result: RoutingResult = { timeScale, endpoints, windowSeconds, points, goodput: good };
  log(report(result));
  writeJson(opts.json ?? 'bench/results/routing.json', result);
  if (opts.svg) writeSvg(opts.svg, chart(result));
  return result;
}

function report(r: RoutingResult): string {
  const rows: Row[] = r.points.map((p) => {
    const base = r.points.find((q) => q.workload === p.workload && q.rate === p.rate && q.strategy === BASELINE)!.summary;
    const fc = r.points.find((q) => q.workload === p.workload && q.rate === p.rate && q.strategy === FLOW_CONTROL_BASELINE)?.summary;
    const s = p.summary;
    const shed = Object.entries(p.priorities).map(([k, v]) => `${k.slice(0, 4)}:${v.shed}/${v.sent}`).join(' ');
    const queued = Object.entries(p.queued).map(([k, v]) => `${k}:${v}`).join(' ');
    return {
      workload: p.workload,
      strategy: p.strategy,
      'req/s': p.rate,
      sent: s.sent,
      'ttft p50': s.ttftP50,
      'ttft p90': s.ttftP90,
      'ttft p99': s.ttftP99,
      'e2e p99': s.e2eP99,
      'tok/s': s.outputTokensPerS,
      ntpot: s.ntpot,
      'p90 ×rr': ratio(s.ttftP90, base.ttftP90),
      'e2e99 ×rr': ratio(s.e2eP99, base.e2eP99),
      'p90 ×fc': fc ? ratio(s.ttftP90, fc.ttftP90) : null,
      'e2e99 ×fc': fc ? ratio(s.e2eP99, fc.e2eP99) : null,
      failed: s.failed,
      shed: shed || s.shed,
      queued: queued || '-',
    };
  });
  const cols = ['workload', 'strategy', 'req/s', 'sent', 'ttft p50', 'ttft p90', 'ttft p99', 'e2e p99', 'tok/s', 'ntpot', 'p90 ×rr', 'e2e99 ×rr', 'p90 ×fc', 'e2e99 ×fc', 'failed', 'shed', 'queued'];
  const goodRows: Row[] = r.goodput.map((g) => ({
    workload: g.workload,
    'slo (p90 ttft, s)': g.slo,
    ...Object.fromEntries(STRATEGY_NAMES.map((s) => [s, g.byStrategy[s]])),
    'tollgate ×rr': ratio(g.byStrategy.tollgate, g.byStrategy[BASELINE]),
    'tollgate ×fc': ratio(g.byStrategy.tollgate, g.byStrategy[FLOW_CONTROL_BASELINE]),
  }));
  const critical = criticalRows(r);
  return [
    `routing: ${r.endpoints} simulated endpoints at ×${r.timeScale}, ${r.windowSeconds} simulated s per rate; latencies in simulated seconds`,
    table(rows, cols),
    '',
    'goodput (highest req/s with p90 TTFT under the SLO and nothing failed)',
    table(goodRows, ['workload', 'slo (p90 ttft, s)', ...STRATEGY_NAMES, 'tollgate ×rr', 'tollgate ×fc']),
    ...(critical.length
      ? [
          '',
          "critical TTFT p99 against the unloaded TTFT p99 (the lowest rate; the strategy's own, else round-robin's): of the critical requests alone, and of all",
          table(critical, ['workload', 'strategy', 'req/s', 'critical p99', '×unloaded critical', '×unloaded all', 'shed']),
        ]
      : []),
  ].join('\n');
}

/**
 * For workloads with priorities: critical TTFT p99 at each rate against the unloaded TTFT p99 at the lowest rate.
 * Unloaded, a critical request is served like any other and its lengths are drawn alike, so all requests there
 * estimate its unloaded p99 too, from five times the samples: the critical ones alone are a dozen, whose "p99" is
 * their maximum, about the 95th percentile.
 */
function criticalRows(r: RoutingResult): Row[] {
  const rows: Row[] = [];
  for (const p of r.points) {
    const crit = p.priorities.critical;
    if (!crit) continue;
    const lowest = Math.min(...r.points.filter((q) => q.workload === p.workload).map((q) => q.rate));
    const at = (s: StrategyName) => r.points.find((q) => q.workload === p.workload && q.strategy === s && q.rate === lowest);
    const unloaded = (at(p.strategy) ?? at(BASELINE))!;
    const shed = Object.entries(p.priorities).map(([k, v]) => `${k.slice(0, 4)}:${v.shed}/${v.sent}`).join(' ');
    rows.push({
      workload: p.workload,
      strategy: p.strategy,
      'req/s': p.rate,
      'critical p99': crit.ttftP99,
      '×unloaded critical': ratio(crit.ttftP99, unloaded.priorities.critical!.ttftP99),
      '×unloaded all': ratio(crit.ttftP99, unloaded.summary.ttftP99),
      shed,
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

/** inference_extension_flow_control_request_queue_duration_seconds_count by "<priority class>/<outcome>". */
async function queueCounts(adminPort: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const out: Record<string, number> = {};
  const re = /^inference_extension_flow_control_request_queue_duration_seconds_count\{([^}]*)\} (\S+)$/gm;
  for (const m of text.matchAll(re)) {
    const labels = Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    out[`${PRIORITY_LABEL[labels.priority] ?? labels.priority}/${labels.outcome}`] = Number(m[2]);
  }
  return out;
}

/**
 * Waits until the fleet is ready and idle, so rates do not overlap: every endpoint scraped, its waiting and running 0,
 * nothing is in flight through the gateway and its flow-control queue is empty (up to 30 s real).
 */
async function settle(adminPort: number): Promise<void> {
  type View = { queueLength?: number; endpoints: { status?: string; inFlight?: number; metrics?: { waiting?: number; running?: number } }[] };
  for (let i = 0; i < 300; i++) {
    const view = (await (await fetch(`http://127.0.0.1:${adminPort}/v1/pools/pool`)).json()) as View;
    const busy =
      (view.queueLength ?? 0) > 0 ||
      view.endpoints.some((e) => e.status !== 'ready' || (e.inFlight ?? 0) > 0 || (e.metrics?.waiting ?? 0) + (e.metrics?.running ?? 0) > 0);
    if (!busy) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}
