// The routing benchmark's workloads: seeded synthetic request streams (Poisson arrivals) and the fleet each one needs.
import { seededRandom } from '../src/sim/hash.js';

export const BASE_MODEL = 'meta-llama/Llama-3.1-8B-Instruct';

export type WorkloadName = 'chat' | 'shared-prefix' | 'multi-lora' | 'overload';
export const WORKLOADS: WorkloadName[] = ['chat', 'shared-prefix', 'multi-lora', 'overload'];

/** Client-facing model names the overload workload sends, one per criticality. */
export const PRIORITY_MODELS = { critical: 'critical', standard: 'standard', sheddable: 'sheddable' } as const;
export type PriorityClass = keyof typeof PRIORITY_MODELS;

export interface BenchRequest {
  /** Seconds after the start of the window (simulated time). */
  at: number;
  model: string;
  messages: { role: 'system' | 'user'; content: string }[];
  maxTokens: number;
  /** Set by the overload workload. */
  priority?: PriorityClass;
}

export interface Workload {
  name: WorkloadName;
  /** Simulated requests per second, lowest first; the first is the unloaded reference. */
  rates: number[];
  /** Simulated seconds of arrivals per rate (halved by --quick). */
  windowSeconds: number;
  /** Simulator options beyond the common ones. */
  sim: { loras?: string[]; maxLoras?: number };
  /** InferenceModels: client name → target model and criticality. */
  models: { name: string; target: string; criticality?: 'Critical' | 'Standard' | 'Sheddable' }[];
  generate(rate: number, seconds: number, seed: number): BenchRequest[];
}

const WORDS =
  'time person year way day thing man world life hand part child eye woman place work week case point government company number group problem fact be have do say get make go know take see come think look want give use find tell ask seem feel try leave call good new first last long great little own other old right big high different small large next early young important few public bad same able'.split(
    ' ',
  );

/** About one token per word with the gateway's tokenizer. */
function words(random: () => number, count: number): string {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(WORDS[Math.floor(random() * WORDS.length)]);
  return out.join(' ');
}

function lognormal(random: () => number, mean: number, sigma: number): number {
  const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  return Math.exp(Math.log(mean) - (sigma * sigma) / 2 + sigma * z);
}

function arrivals(random: () => number, rate: number, seconds: number): number[] {
  const out: number[] = [];
  for (let t = -Math.log(1 - random()) / rate; t < seconds; t += -Math.log(1 - random()) / rate) out.push(t);
  return out;
}

/** ShareGPT-like lengths: lognormal prompt (mean 250 tokens, ≤ 2,000) and output (mean 200, ≤ 800). */
function chatRequest(random: () => number, at: number, model: string): BenchRequest {
  const prompt = Math.max(4, Math.round(Math.min(2000, lognormal(random, 250, 1))));
  const output = Math.max(2, Math.round(Math.min(800, lognormal(random, 200, 0.8))));
  return { at, model, messages: [{ role: 'user', content: words(random, prompt) }], maxTokens: output };
}

const chat: Workload = {
  name: 'chat',
  rates: [5, 25, 30, 35],
  windowSeconds: 10,
  sim: {},
  models: [{ name: BASE_MODEL, target: BASE_MODEL }],
  generate(rate, seconds, seed) {
    const random = seededRandom(seed);
    return arrivals(random, rate, seconds).map((at) => chatRequest(random, at, BASE_MODEL));
  },
};

/**
 * The Inference Extension's shared-prefix benchmark (150 groups × 5 users, 6,000-token system prompts, 1,200-token
 * questions) scaled to the simulator's 32k-token KV cache per endpoint: 30 groups × 5 users, 3,000-token system
 * prompt, 300-token question, 100-token answers. The prompts of all groups (~90k tokens) do not fit one endpoint, a
 * fair share of them does, as in the original; and as there, a prefix-oblivious picker is held back by prefill and by
 * KV room (16 sequences of 3,400 uncached tokens need 54k), while a prefix-aware one prefills the question alone and
 * shares each endpoint's few system prompts. Answers are short because the bench's 16-sequence batches make decode
 * the only cost of 1,000-token answers, which no picker changes.
 * 20 s per rate: requests end in 2–5 s here, so past a strategy's capacity its backlog needs longer than the other
 * workloads' 10 s (where 800-token answers take 13 s) to show; round-robin's knee is at 12–15 req/s, the default
 * profile's at 22–25 (virtual clock).
 */
const sharedPrefix: Workload = {
  name: 'shared-prefix',
  rates: [5, 12, 18, 22],
  windowSeconds: 20,
  sim: {},
  models: [{ name: BASE_MODEL, target: BASE_MODEL }],
  generate(rate, seconds, seed) {
    const text = seededRandom(seed ^ 0x5eed);
    const groups = Array.from({ length: 30 }, () => ({ system: words(text, 3000), questions: Array.from({ length: 5 }, () => words(text, 300)) }));
    const random = seededRandom(seed);
    return arrivals(random, rate, seconds).map((at) => {
      const g = groups[Math.floor(random() * groups.length)];
      const q = g.questions[Math.floor(random() * g.questions.length)];
      return { at, model: BASE_MODEL, messages: [{ role: 'system', content: g.system }, { role: 'user', content: q }], maxTokens: 100 };
    });
  },
};

const ADAPTERS = Array.from({ length: 15 }, (_, i) => `lora-${String(i).padStart(2, '0')}`);

/** 15 adapters with Zipf (s = 1) popularity, at most 3 resident per endpoint; chat-like lengths. */
const multiLora: Workload = {
  name: 'multi-lora',
  rates: [5, 20, 30, 40],
  windowSeconds: 10,
  sim: { loras: ADAPTERS, maxLoras: 3 },
  models: [{ name: BASE_MODEL, target: BASE_MODEL }, ...ADAPTERS.map((a) => ({ name: a, target: a }))],
  generate(rate, seconds, seed) {
    const random = seededRandom(seed);
    const weights = ADAPTERS.map((_, i) => 1 / (i + 1));
    const total = weights.reduce((a, b) => a + b, 0);
    const draw = () => {
      let x = random() * total;
      for (let i = 0; i < weights.length; i++) if ((x -= weights[i]) <= 0) return ADAPTERS[i];
      return ADAPTERS[ADAPTERS.length - 1];
    };
    return arrivals(random, rate, seconds).map((at) => chatRequest(random, at, draw()));
  },
};

/** Chat traffic, 20% critical, 40% standard, 40% sheddable, from well below to well above the fleet's capacity. */
const overload: Workload = {
  name: 'overload',
  rates: [5, 40, 60],
  windowSeconds: 10,
  sim: {},
  models: [
    { name: PRIORITY_MODELS.critical, target: BASE_MODEL, criticality: 'Critical' },
    { name: PRIORITY_MODELS.standard, target: BASE_MODEL, criticality: 'Standard' },
    { name: PRIORITY_MODELS.sheddable, target: BASE_MODEL, criticality: 'Sheddable' },
  ],
  generate(rate, seconds, seed) {
    const random = seededRandom(seed);
    return arrivals(random, rate, seconds).map((at) => {
      const x = random();
      const priority: PriorityClass = x < 0.2 ? 'critical' : x < 0.6 ? 'standard' : 'sheddable';
      return { ...chatRequest(random, at, PRIORITY_MODELS[priority]), priority };
    });
  },
};

export const WORKLOAD_DEFS: Record<WorkloadName, Workload> = { chat, 'shared-prefix': sharedPrefix, 'multi-lora': multiLora, overload };
