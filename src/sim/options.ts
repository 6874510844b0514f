// What a simulated server can be told (the CLI's flags map onto these) and the defaults it otherwise uses.
import { BLOCK_SIZE } from './kv-cache.js';

export interface SimServerOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  host?: string;
  /** Served model name(s); the first is the base model that labels metrics and parents the adapters. */
  model?: string | string[];
  loras?: string[];
  maxLoras?: number;
  /** Simulated time to load one LoRA adapter, ms. */
  loraLoadMs?: number;
  /** Every simulated duration is divided by this (10 = ten times faster than real time). */
  timeScale?: number;
  seed?: number;
  /** Position in a fleet; varies the fault-injection draws between replicas that share a seed. */
  replica?: number;
  maxNumSeqs?: number;
  /** Waiting requests beyond this are answered 429. */
  maxQueue?: number;
  kvBlocks?: number;
  maxBatchedTokens?: number;
  maxModelLen?: number;
  /** Cap on the drawn output length of requests without max_tokens. */
  maxOutputTokens?: number;
  errorRate?: number;
  latencySpikeRate?: number;
  latencySpikeMs?: number;
  dieAfter?: number;
  dieMidStream?: number;
}

export const SIM_DEFAULTS = {
  host: '127.0.0.1',
  model: 'meta-llama/Llama-3.1-8B-Instruct',
  maxLoras: 2,
  loraLoadMs: 200,
  timeScale: 1,
  seed: 0,
  maxNumSeqs: 64,
  maxQueue: 1024,
  kvBlocks: 2048,
  maxBatchedTokens: 8192,
  maxModelLen: 32768,
  maxOutputTokens: 1024,
} as const;

/**
 * Why a server of these options cannot start, or undefined: as vLLM refuses to start when its KV cache cannot hold
 * one sequence of max_model_len tokens, rather than serve a context it can never schedule.
 */
export function simOptionsProblem(o: { kvBlocks: number; maxModelLen: number }): string | undefined {
  const holds = o.kvBlocks * BLOCK_SIZE;
  if (holds >= o.maxModelLen) return undefined;
  return (
    `--kv-blocks ${o.kvBlocks} (${holds} tokens) cannot hold one sequence of --max-model-len ${o.maxModelLen} tokens: ` +
    `raise --kv-blocks to ${Math.ceil(o.maxModelLen / BLOCK_SIZE)} or lower --max-model-len to ${holds}`
  );
}
