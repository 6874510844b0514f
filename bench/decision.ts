// Micro-benchmark of one pick() decision on a populated 64-endpoint pool with realistic prompts (for `tollgate bench`).
import type { PoolConfig } from '../src/config/runtime-config.js';
import { DEFAULT_SETTINGS } from '../src/config/settings.js';
import type { MetricsSource } from '../src/scheduler/metrics-source.js';
import { Scheduler } from '../src/scheduler/scheduler.js';
import type { PickRequest } from '../src/scheduler/types.js';
import { seededRandom } from '../src/sim/hash.js';

export interface DecisionBenchOptions {
  endpoints?: number;
  iterations?: number;
  /** Decisions before measuring, which also fill the prefix index. */
  warmup?: number;
  seed?: number;
}

export interface DecisionBenchResult {
  endpoints: number;
  iterations: number;
  meanUs: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
}

/** Issue #3's bound on one decision for a 64-endpoint pool. */
export const DECISION_P99_TARGET_US = 200;

const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';
const ADAPTERS = ['sql-lora', 'chat-lora', 'summarize-lora', 'code-lora'];
const WORDS = 'the of and to in is that for it as with was on be by this are from at or an have not which but all were when we there can more if will about so what into them some time would these only other new like then also two'.split(' ');
/** Re-scrape every this many decisions (simulated ms), as the 50 ms scrape interval would; outside the timed section. */
const REFRESH_EVERY = 50;

/**
 * benchDecision({ endpoints: 64, iterations: 20_000 }) → { p50Us, p99Us, ... }.
 * Prompts are 2–8 KB: one of 32 shared system prompts plus a unique question, a fifth of them for a
 * LoRA adapter; every endpoint reports metrics, a KV-cache size and resident adapters. Each pick is
 * released at once, so the pool never saturates and every decision runs the whole default profile.
 */
export async function benchDecision(opts: DecisionBenchOptions = {}): Promise<DecisionBenchResult> {
  const count = opts.endpoints ?? 64;
  const iterations = opts.iterations ?? 20_000;
  const warmup = opts.warmup ?? 5_000;
  const random = seededRandom(opts.seed ?? 42);
  const endpoints = Array.from({ length: count }, (_, i) => ({ url: `http://10.0.${i >> 8}.${i & 255}:8000`, address: `10.0.${i >> 8}.${i & 255}:8000` }));
  const pool: PoolConfig = { name: 'bench', endpoints, engine: 'vllm' };
  // Simulated time, a millisecond per decision: metrics stay fresh however slow the machine is.
  let clock = Date.now();
  const scheduler = new Scheduler({ settings: DEFAULT_SETTINGS.scheduler, random, now: () => clock, metricsSource: fakeFleet(random) });
  scheduler.update(new Map([[pool.name, pool]]));
  await scheduler.refresh();

  const systems = Array.from({ length: 32 }, () => text(random, 1500 + random() * 4500));
  const requests: PickRequest[] = Array.from({ length: 512 }, () => {
    const prompt = `system: ${systems[Math.floor(random() * systems.length)]}\nuser: ${text(random, 500 + random() * 1500)}\n`;
    const targetModel = random() < 0.2 ? ADAPTERS[Math.floor(random() * ADAPTERS.length)] : MODEL;
    return { pool, targetModel, prompt, priority: 0, fairnessId: 'bench' };
  });

  const samples = new Float64Array(iterations);
  for (let i = 0; i < warmup + iterations; i++) {
    if (i % REFRESH_EVERY === 0) await scheduler.refresh();
    clock++;
    const req = requests[i % requests.length];
    const t = performance.now();
    const pick = scheduler.pick(req);
    const elapsed = performance.now() - t;
    if (pick instanceof Promise) throw new Error('the benchmark pool saturated; its fleet should always have room');
    if (i >= warmup) samples[i - warmup] = elapsed * 1000;
    pick.release(pick.endpoints[0], { reached: true, status: 200 });
  }
  await scheduler.stop();

  samples.sort();
  const at = (q: number) => round(samples[Math.min(iterations - 1, Math.floor(q * iterations))]);
  return { endpoints: count, iterations, meanUs: round(samples.reduce((a, b) => a + b, 0) / iterations), p50Us: at(0.5), p90Us: at(0.9), p99Us: at(0.99) };
}

/** Endpoints with moderate load, vLLM's KV-cache size and two resident adapters each. */
function fakeFleet(random: () => number): MetricsSource {
  return {
    fetch: async (url) => {
      const a = ADAPTERS[Math.floor(random() * ADAPTERS.length)];
      const b = ADAPTERS[Math.floor(random() * ADAPTERS.length)];
      const label = `{model_name="${MODEL}"}`;
      const text = [
        `vllm:num_requests_waiting${label} ${Math.floor(random() * 4)}`,
        `vllm:num_requests_running${label} ${4 + Math.floor(random() * 8)}`,
        `vllm:kv_cache_usage_perc${label} ${(0.1 + random() * 0.5).toFixed(3)}`,
        `vllm:cache_config_info{block_size="16",num_gpu_blocks="31250"} 1`,
        `vllm:lora_requests_info{max_lora="4",running_lora_adapters="${a},${b}",waiting_lora_adapters=""} ${Date.now() / 1000}`,
        `# ${url}`,
      ].join('\n');
      return { text };
    },
    retain: () => {},
    close: async () => {},
  };
}

function text(random: () => number, chars: number): string {
  let out = '';
  while (out.length < chars) out += WORDS[Math.floor(random() * WORDS.length)] + ' ';
  return out;
}

function round(us: number): number {
  return Math.round(us * 10) / 10;
}
