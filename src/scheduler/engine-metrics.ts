// Which metric names each model-server engine exports, and reading one scrape into an EngineSnapshot.
import type { PoolConfig } from '../config/runtime-config.js';
import { seriesOf, type Sample } from './prom-text.js';

export type Engine = PoolConfig['engine'];

export interface LoraSnapshot {
  /** Adapters loaded in GPU memory, ready to serve. */
  running: ReadonlySet<string>;
  /** Adapters requested but not yet loaded. */
  waiting: ReadonlySet<string>;
  /**
   * Adapter slots taken: the distinct names of both lists. vLLM lists an adapter that has unfinished requests in both
   * (v1 writes every such name into each), so their sum counted an engine using 2 of 4 slots as full.
   */
  inUse: number;
  maxLoras: number;
}

export interface EngineSnapshot {
  waiting: number;
  running: number;
  /** 0..1 */
  kvCacheUsage: number;
  /** Tokens per KV block and blocks in GPU memory (vLLM's cache_config_info); null when not exported. */
  blockSize: number | null;
  numGpuBlocks: number | null;
  /** The base model the server runs (vLLM's model_name label), to tell adapter requests from base-model ones. */
  modelName: string | null;
  lora: LoraSnapshot | null;
  /** Prompt tokens the server has processed since it started (a counter); null when not exported. */
  promptTokensTotal: number | null;
}

/** A series: a metric name, optionally narrowed to one label value. */
interface SeriesRef {
  name: string;
  label?: readonly [string, string];
}

interface EngineNames {
  /** Each list is tried in order; the first series present wins. */
  waiting: readonly SeriesRef[];
  running: readonly SeriesRef[];
  kvCacheUsage: readonly SeriesRef[];
  cacheConfig: string | null;
  lora: string | null;
  /** The prompt-token counter (optional: the page is read without it). */
  promptTokens: string | null;
}

/**
 * Names follow the Inference Extension's model-server protocol table. vLLM renamed
 * gpu_cache_usage_perc to kv_cache_usage_perc (both 0..1). TensorRT-LLM: trtllm-serve's
 * trtllm_* names, then Triton's tensorrtllm_backend series as the fallback.
 */
export const ENGINE_METRICS: Record<Engine, EngineNames> = {
  vllm: {
    waiting: [{ name: 'vllm:num_requests_waiting' }],
    running: [{ name: 'vllm:num_requests_running' }],
    kvCacheUsage: [{ name: 'vllm:kv_cache_usage_perc' }, { name: 'vllm:gpu_cache_usage_perc' }],
    cacheConfig: 'vllm:cache_config_info',
    lora: 'vllm:lora_requests_info',
    promptTokens: 'vllm:prompt_tokens_total',
  },
  sglang: {
    waiting: [{ name: 'sglang:num_queue_reqs' }],
    running: [{ name: 'sglang:num_running_reqs' }],
    kvCacheUsage: [{ name: 'sglang:token_usage' }],
    cacheConfig: null,
    lora: null,
    promptTokens: 'sglang:prompt_tokens_total',
  },
  trtllm: {
    waiting: [{ name: 'trtllm_num_requests_waiting' }, { name: 'nv_trt_llm_request_metrics', label: ['request_type', 'waiting'] }],
    running: [{ name: 'trtllm_num_requests_running' }, { name: 'nv_trt_llm_request_metrics', label: ['request_type', 'scheduled'] }],
    kvCacheUsage: [
      { name: 'trtllm_kv_cache_utilization' },
      { name: 'nv_trt_llm_kv_cache_block_metrics', label: ['kv_cache_block_type', 'fraction'] },
    ],
    cacheConfig: null,
    lora: null,
    promptTokens: null,
  },
};

/** Every metric name a snapshot reads (`lora`: the LoRA series, when read), for the one pass over the page. */
function wantedNames(n: EngineNames, lora: string | null): string[] {
  return [...n.waiting, ...n.running, ...n.kvCacheUsage].map((r) => r.name).concat(n.cacheConfig ?? [], lora ?? [], n.promptTokens ?? []);
}

/**
 * Reads one /metrics page; throws when a required series is missing (a wrong `engine` shows up as an unhealthy endpoint).
 * `cut`: only the page's first lines came (MetricsPage): its LoRA state is then unknown (null), the current line being
 * possibly past the cut.
 */
export function readEngineMetrics(engine: Engine, text: string, cut = false): EngineSnapshot {
  const names = ENGINE_METRICS[engine];
  const lora = cut ? null : names.lora;
  const series = seriesOf(text, wantedNames(names, lora), lora ? [lora] : []);
  const waiting = firstPresent(series, names.waiting, 'waiting requests', engine);
  const running = firstPresent(series, names.running, 'running requests', engine);
  const kv = firstPresent(series, names.kvCacheUsage, 'KV-cache usage', engine);
  const config = names.cacheConfig ? series.get(names.cacheConfig)![0] : undefined;
  return {
    // Data-parallel servers export one series per engine rank: requests add up, KV usage averages. Figures out of
    // range are clamped: a negative queue made the endpoint absorb a whole burst and never look saturated.
    waiting: requestCount(sum(waiting)),
    running: requestCount(sum(running)),
    kvCacheUsage: Math.min(1, Math.max(0, sum(kv) / kv.length)),
    blockSize: positiveInt(config?.labels.block_size),
    numGpuBlocks: positiveInt(config?.labels.num_gpu_blocks),
    modelName: waiting[0].labels.model_name ?? null,
    lora: lora ? readLora(series.get(lora)![0]) : null,
    promptTokensTotal: names.promptTokens ? counterOf(series.get(names.promptTokens)!) : null,
  };
}

/** A counter's value over every engine rank; null when absent or not a count. */
function counterOf(samples: Sample[]): number | null {
  if (samples.length === 0) return null;
  const total = sum(samples);
  return Number.isFinite(total) && total >= 0 ? total : null;
}

function firstPresent(series: ReadonlyMap<string, Sample[]>, refs: readonly SeriesRef[], what: string, engine: Engine): Sample[] {
  for (const ref of refs) {
    let samples = series.get(ref.name)!;
    if (ref.label) {
      const [key, value] = ref.label;
      samples = samples.filter((s) => s.labels[key] === value);
    }
    samples = samples.filter((s) => Number.isFinite(s.value));
    if (samples.length > 0) return samples;
  }
  throw new Error(`no ${what} series (${refs.map((r) => r.name).join(' or ')}) for engine ${engine}`);
}

/**
 * `newest`: the series' sample with the greatest value. vLLM sets the label set of the moment to the current time at
 * every engine step and never removes one (prometheus_client keeps them all, in the order first set): a long-running
 * server lists thousands, and the newest is the one in force.
 */
function readLora(newest: Sample | undefined): LoraSnapshot | null {
  if (!newest) return null;
  const running = adapterSet(newest.labels.running_lora_adapters);
  const waiting = adapterSet(newest.labels.waiting_lora_adapters);
  if (!running || !waiting) return null;
  let inUse = running.size;
  for (const name of waiting) if (!running.has(name)) inUse++;
  return { running, waiting, inUse, maxLoras: positiveInt(newest.labels.max_lora) ?? 0 };
}

/**
 * Names read from one adapter list at most. vLLM's running list holds at most max_lora names (a few dozen on real
 * servers), its waiting list the adapters that have queued requests; one line of 500,000 names (well within a 4 MiB
 * page) held the event loop 0.3 s at every scrape. A longer list leaves the LoRA state unknown, as a cut page does.
 */
export const MAX_ADAPTERS = 1024;

/** The names of a comma-separated list; null past MAX_ADAPTERS entries (empty ones count, so each costs bounded work). */
function adapterSet(list: string | undefined): Set<string> | null {
  const out = new Set<string>();
  if (!list) return out;
  for (let start = 0, n = 0; n < MAX_ADAPTERS; n++) {
    const comma = list.indexOf(',', start);
    const name = list.slice(start, comma < 0 ? list.length : comma).trim();
    if (name) out.add(name);
    if (comma < 0) return out;
    start = comma + 1;
  }
  return null;
}

/**
 * Requests counted beyond this are taken as this many. Each rank's figure is finite, but two ranks at 1e308 added up
 * to Infinity: the queue and least-requests scorers' range became Infinity and every endpoint's score NaN (0).
 */
const MAX_REQUEST_COUNT = Number.MAX_SAFE_INTEGER;

function requestCount(total: number): number {
  return total > 0 ? Math.min(total, MAX_REQUEST_COUNT) : 0;
}

function sum(samples: Sample[]): number {
  let total = 0;
  for (const s of samples) total += s.value;
  return total;
}

function positiveInt(text: string | undefined): number | null {
  const n = text === undefined ? NaN : Number(text);
  return Number.isInteger(n) && n > 0 ? n : null;
}
