// The fleet as the admin API shows it (GET /v1/pools, /v1/pools/{name}): plain JSON-ready objects built on demand.
import type { Decision } from './decision-log.js';
import type { EndpointState, EndpointStatus } from './endpoint-state.js';
import type { PipelineDescription } from './pipeline.js';

export interface EndpointView {
  url: string;
  address: string;
  status: EndpointStatus;
  healthy: boolean;
  /** ms since the last successful scrape; null before the first. */
  freshnessMs: number | null;
  consecutiveFailures: number;
  /** How much longer it rests after failed answers (5xx, 429): others are picked first meanwhile. */
  restingMs: number;
  lastError: string | null;
  /** This gateway's requests to it that have not ended. */
  inFlight: number;
  /** Batch capacity (max-num-seqs), configured or learnt from scrapes; 0 while not known. */
  batchCapacity: number;
  /** Context length (prompt + output tokens) from its /v1/models; null while not known. */
  contextWindow: number | null;
  metrics: {
    waiting: number;
    running: number;
    kvCacheUsage: number;
    /** Waiting and KV usage including the requests sent since the scrape. */
    effectiveQueue: number;
    effectiveKvCacheUsage: number;
    blockSize: number | null;
    numGpuBlocks: number | null;
    modelName: string | null;
    lora: { running: string[]; waiting: string[]; maxLoras: number } | null;
  };
  /** Each scorer's score at the last decision that considered it (null: abstained or never scored). */
  lastScores: Record<string, number | null>;
}

export interface DecisionView {
  at: string;
  model: string;
  endpoint: string;
  scores: Record<string, number | null>;
  total: number;
  priority: number;
  queuedMs: number;
}

export interface PoolView {
  name: string;
  engine: string;
  saturated: boolean;
  /**
   * How often its endpoints are scraped (ms): scheduler.scrapeInterval, or longer when the fleet would scrape more than
   * scheduler.maxScrapesPerSecond. Staleness and metrics freshness follow it.
   */
  scrapeIntervalMs: number;
  /** Mean of max(queue/threshold, KV/threshold) over ready endpoints; 1 = at the saturation thresholds. */
  utilization: number;
  queueLength: number;
  queueByPriority: { priority: number; length: number }[];
  profile: PipelineDescription;
  endpoints: EndpointView[];
  /** Newest first. */
  decisions: DecisionView[];
}

export function endpointView(ep: EndpointState, now: number, staleAfter: number, scorers: readonly string[]): EndpointView {
  const m = ep.metrics;
  return {
    url: ep.url,
    address: ep.address,
    status: ep.status(now, staleAfter),
    healthy: ep.healthy,
    freshnessMs: ep.scrapedAt > 0 ? Math.round(now - ep.scrapedAt) : null,
    consecutiveFailures: ep.consecutiveFailures,
    restingMs: ep.restingMs(now),
    lastError: ep.lastError,
    inFlight: ep.inFlight,
    batchCapacity: ep.batchCapacity,
    contextWindow: ep.contextWindow ?? null,
    metrics: {
      waiting: m.waiting,
      running: m.running,
      kvCacheUsage: m.kvCacheUsage,
      effectiveQueue: ep.queue,
      effectiveKvCacheUsage: ep.kvCacheUsage,
      blockSize: m.blockSize,
      numGpuBlocks: m.numGpuBlocks,
      modelName: m.modelName,
      lora: m.lora ? { running: [...m.lora.running], waiting: [...m.lora.waiting], maxLoras: m.lora.maxLoras } : null,
    },
    lastScores: byName(scorers, ep.lastScores),
  };
}

export function decisionView(d: Decision, scorers: readonly string[]): DecisionView {
  return {
    at: new Date(d.at).toISOString(),
    model: d.model,
    endpoint: d.endpoint,
    scores: byName(scorers, d.scores),
    total: d.total,
    priority: d.priority,
    queuedMs: Math.round(d.queuedMs),
  };
}

function byName(names: readonly string[], values: Float64Array): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  names.forEach((name, k) => {
    const v = values[k];
    out[name] = v === undefined || Number.isNaN(v) ? null : v;
  });
  return out;
}
