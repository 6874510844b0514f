// The picker's Prometheus metrics, under the Inference Extension's names. Pool gauges are computed when scraped, not per request.
import { Gauge, type Registry } from 'prom-client';
import { FastHistogram, type HistogramSeries } from '../telemetry/fast-metrics.js';
import type { QueueOutcome } from './flow-control.js';
import type { PluginTimer } from './pipeline.js';

/** What the pool gauges read at collection time. */
export interface PoolGauges {
  name: string;
  averageKvCacheUsage(): number;
  averageQueueSize(): number;
  readyEndpoints(): number;
  queueLengths(): { priority: number; length: number }[];
}

// Decisions take tens of microseconds; the default buckets (5 ms and up) would put them all in one.
const DECISION_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.0025, 0.01];
const RATIO_BUCKETS = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];
const QUEUE_BUCKETS = [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class SchedulerMetrics {
  // Observed on every decision: FastHistogram, because prom-client hashes the label set per observation.
  readonly #decision: HistogramSeries;
  readonly #plugin: FastHistogram;
  readonly #prefixHitRatio: HistogramSeries;
  readonly #queueDuration: FastHistogram;
  /**
   * The priorities each pool has queued (every queued request leaves through observeQueue): the queue-size gauge reads
   * 0 for them while none waits, where a vanished series stopped a graph at its last value and never met == 0.
   */
  readonly #queued = new Map<string, Set<number>>();

  /** `scrapeIntervalMs`: the interval endpoints are scraped at, as the scrape budget stretches it. */
  constructor(registry: Registry, pools: () => Iterable<PoolGauges>, scrapeIntervalMs: () => number) {
    const registers = [registry];
    const poolGauge = (name: string, help: string, read: (p: PoolGauges) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['name'],
        registers,
        collect() {
          this.reset();
          for (const p of pools()) this.set({ name: p.name }, read(p));
        },
      });
    poolGauge('inference_pool_average_kv_cache_utilization', 'Average KV-cache utilization of the pool’s ready endpoints (0..1).', (p) =>
      p.averageKvCacheUsage(),
    );
    poolGauge('inference_pool_average_queue_size', 'Average number of waiting requests on the pool’s ready endpoints.', (p) => p.averageQueueSize());
    poolGauge('inference_pool_ready_pods', 'Endpoints of the pool that are healthy and have fresh metrics.', (p) => p.readyEndpoints());
    const queued = this.#queued;
    new Gauge({
      name: 'inference_extension_flow_control_queue_size',
      help: 'Requests waiting in the flow-control queue.',
      labelNames: ['pool', 'priority'],
      registers,
      collect() {
        this.reset();
        const current = new Set<string>();
        for (const p of pools()) {
          current.add(p.name);
          for (const priority of queued.get(p.name) ?? []) this.set({ pool: p.name, priority: String(priority) }, 0);
          for (const q of p.queueLengths()) this.set({ pool: p.name, priority: String(q.priority) }, q.length);
        }
        for (const name of queued.keys()) if (!current.has(name)) queued.delete(name);
      },
    });
    new Gauge({
      name: 'tollgate_scheduler_scrape_interval_seconds',
      help: 'The interval each endpoint’s /metrics is scraped at: scheduler.scrapeInterval, or longer to keep within scheduler.maxScrapesPerSecond.',
      registers,
      collect() {
        this.set(scrapeIntervalMs() / 1000);
      },
    });
    this.#decision = new FastHistogram({
      name: 'inference_extension_scheduler_e2e_duration_seconds',
      help: 'Time to make one endpoint-picking decision (queueing excluded).',
      labelNames: [],
      buckets: DECISION_BUCKETS,
      registers,
    }).labels();
    this.#plugin = new FastHistogram({
      name: 'inference_extension_scheduler_plugin_duration_seconds',
      help: 'Time each scheduler plugin takes per decision.',
      labelNames: ['plugin_type', 'plugin_name'],
      buckets: DECISION_BUCKETS,
      registers,
    });
    this.#prefixHitRatio = new FastHistogram({
      name: 'inference_extension_prefix_indexer_hit_ratio',
      help: 'Share of the prompt’s blocks the chosen endpoint already held, per decision.',
      labelNames: [],
      buckets: RATIO_BUCKETS,
      registers,
    }).labels();
    this.#queueDuration = new FastHistogram({
      name: 'inference_extension_flow_control_request_queue_duration_seconds',
      help: 'Time requests spent in the flow-control queue, by how they left it.',
      labelNames: ['pool', 'priority', 'outcome'],
      buckets: QUEUE_BUCKETS,
      registers,
    });
  }

  observeDecision(seconds: number): void {
    this.#decision.observe(seconds);
  }

  pluginTimer(type: string, name: string): PluginTimer {
    const bound = this.#plugin.labels(type, name);
    return (seconds) => bound.observe(seconds);
  }

  observePrefixHitRatio(ratio: number): void {
    this.#prefixHitRatio.observe(ratio);
  }

  /** Drops the queue-wait series of pools no longer configured: a reload renaming pools kept every old name's forever. */
  retainPools(names: ReadonlySet<string>): void {
    this.#queueDuration.removeWhere(([pool]) => !names.has(pool));
  }

  observeQueue(pool: string, priority: number, outcome: QueueOutcome, seconds: number): void {
    this.#queueDuration.labels(pool, String(priority), outcome).observe(seconds);
    let priorities = this.#queued.get(pool);
    if (!priorities) this.#queued.set(pool, (priorities = new Set()));
    priorities.add(priority);
  }
}
