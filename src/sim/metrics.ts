// The simulator's Prometheus metrics under vLLM's names; gauges read the engine at scrape time, so a scrape sees now.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Engine } from './engine.js';
type FinishReason = 'stop' | 'length';
import { BLOCK_SIZE } from './kv-cache.js';

export interface SimMetrics {
  readonly contentType: string;
  /** The /metrics page. */
  page(): Promise<string>;
  firstToken(seconds: number): void;
  /** A request answered in full; one the client left is not (nor in vLLM, whose frontend drops it unrecorded). */
  finished(r: { finishReason: FinishReason; seconds: number }): void;
}

// vLLM's own bucket boundaries, so dashboards built for vLLM read the simulator the same way.
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560];
const E2E_BUCKETS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];
/** vLLM's finish reasons, each with its series from the start (at 0), as vLLM creates them. */
const FINISH_REASONS = ['stop', 'length', 'abort', 'error', 'repetition'];

export function createSimMetrics(model: string, engine: Engine, loras: readonly string[]): SimMetrics {
  // Two registries: what reads the engine is rendered at every scrape; the request histograms and counters, whose
  // rendering costs the most (a gateway scrapes every 50 ms, at ×4 time scale 320 times a second per fleet of
  // 8), only after a request changed them.
  const registry = new Registry();
  registry.setDefaultLabels({ model_name: model });
  const registers = [registry];
  const requestRegistry = new Registry();
  requestRegistry.setDefaultLabels({ model_name: model });
  let requestPage: Promise<string> | null = null;

  new Gauge({
    name: 'vllm:num_requests_waiting',
    help: 'Number of requests waiting to be processed.',
    registers,
    collect() {
      this.set(engine.waitingCount);
    },
  });
  new Gauge({
    name: 'vllm:num_requests_running',
    help: 'Number of requests in model execution batches.',
    registers,
    collect() {
      this.set(engine.runningCount);
    },
  });
  new Gauge({
    name: 'vllm:kv_cache_usage_perc',
    help: 'KV-cache usage. 1 means 100 percent usage.',
    registers,
    collect() {
      this.set(engine.kv.usage);
    },
  });
  new Gauge({
    name: 'vllm:cache_config_info',
    help: 'Information of the LLMEngine CacheConfig.',
    labelNames: ['block_size', 'num_gpu_blocks'],
    registers,
  }).set({ block_size: String(BLOCK_SIZE), num_gpu_blocks: String(engine.kv.totalBlocks) }, 1);
  if (loras.length > 0) {
    // As vLLM: the label set of the moment is set to the current time, and none is ever removed (prometheus_client
    // keeps every one, in the order first set, as prom-client does), so the page lists each (running, waiting) pair the
    // server ever had and the newest value is now. Stamps only grow: the set of now is the newest within a millisecond too.
    let stamp = 0;
    new Gauge({
      name: 'vllm:lora_requests_info',
      help: 'Running stats on LoRA requests.',
      labelNames: ['running_lora_adapters', 'waiting_lora_adapters', 'max_lora'],
      registers,
      collect() {
        stamp = Math.max(Date.now() / 1000, stamp + 0.001);
        this.set(
          {
            running_lora_adapters: [...engine.runningLoras].sort().join(','),
            waiting_lora_adapters: [...engine.waitingLoras].sort().join(','),
            max_lora: String(engine.loras.maxLoras),
          },
          stamp,
        );
      },
    });
  }
  new Counter({
    name: 'vllm:prefix_cache_queries_total',
    help: 'Prefix cache queries, in terms of number of queried tokens.',
    registers,
    collect() {
      this.reset();
      this.inc(engine.prefixQueryTokens);
    },
  });
  new Counter({
    name: 'vllm:prefix_cache_hits_total',
    help: 'Prefix cache hits, in terms of number of cached tokens.',
    registers,
    collect() {
      this.reset();
      this.inc(engine.prefixHitTokens);
    },
  });
  // Counted by the engine step by step, as vLLM counts them: a request the client leaves has its tokens counted so far.
  new Counter({
    name: 'vllm:prompt_tokens_total',
    help: 'Number of prefill tokens processed.',
    registers,
    collect() {
      this.reset();
      this.inc(engine.promptTokens);
    },
  });
  new Counter({
    name: 'vllm:generation_tokens_total',
    help: 'Number of generation tokens processed.',
    registers,
    collect() {
      this.reset();
      this.inc(engine.generationTokens);
    },
  });

  const ttft = new Histogram({
    name: 'vllm:time_to_first_token_seconds',
    help: 'Histogram of time to first token in seconds.',
    buckets: TTFT_BUCKETS,
    registers: [requestRegistry],
  });
  const e2e = new Histogram({
    name: 'vllm:e2e_request_latency_seconds',
    help: 'Histogram of end to end request latency in seconds.',
    buckets: E2E_BUCKETS,
    registers: [requestRegistry],
  });
  const success = new Counter({
    name: 'vllm:request_success_total',
    help: 'Count of successfully processed requests.',
    labelNames: ['finished_reason'],
    registers: [requestRegistry],
  });
  for (const reason of FINISH_REASONS) success.inc({ finished_reason: reason }, 0);

  return {
    contentType: registry.contentType,
    async page() {
      requestPage ??= requestRegistry.metrics().catch((err: unknown) => {
        // Not kept: the next scrape renders again.
        requestPage = null;
        throw err;
      });
      const [live, requests] = await Promise.all([registry.metrics(), requestPage]);
      return live + requests;
    },
    firstToken(seconds) {
      ttft.observe(seconds);
      requestPage = null;
    },
    finished(r) {
      requestPage = null;
      e2e.observe(r.seconds);
      success.inc({ finished_reason: r.finishReason });
    },
  };
}
