// The seam between the data plane and the endpoint picker: what a pick is asked, and what it answers.
import type { EndpointConfig, PoolConfig } from '../config/runtime-config.js';

export interface PickRequest {
  pool: PoolConfig;
  /** The model name sent upstream (after rewrite): a base model or a LoRA adapter. */
  targetModel: string;
  /**
   * The prompt, for prefix affinity (a chat request as its model server lays it out, promptLayout(); a completions
   * prompt as it is): or only its leading characters the pool's scorers read (promptPrefix()), with its whole length
   * in promptChars.
   */
  prompt: string;
  /** The whole prompt's length in characters when `prompt` holds only its leading part. */
  promptChars?: number;
  /** Prompt token count when already known (quota estimate); pickers may estimate from prompt length otherwise. */
  promptTokens?: number;
  /** The request body's size: what a request held in the flow-control queue keeps in memory (maxQueueBytes). */
  bytes?: number;
  /** Critical 1, Standard 0, Sheddable -1, or an InferenceObjective's priority. */
  priority: number;
  /** Who the request belongs to, for fairness between tenants of one priority. */
  fairnessId: string;
  /** Only these addresses (ip:port) may be picked (the ext_proc subset hint). */
  subset?: ReadonlySet<string>;
  signal?: AbortSignal;
  /**
   * Called as the request leaves the flow-control queue of a pool whose configuration a reload replaced while it
   * waited (`pool`, the one in force: its servers may be others, running another model): the request takes `pool` and
   * what that configuration says of it (targetModel, priority), or throws a GatewayError, which refuses it. Without
   * it the request goes as it was queued.
   */
  reconfigured?(pool: PoolConfig): void;
}

export interface RequestOutcome {
  /** true when the endpoint answered (any status); false when it could not be reached or failed before answering. */
  reached: boolean;
  /**
   * Tollgate gave up on the attempt itself before an answer (the client went away, a deadline passed): that says
   * nothing about the endpoint's health, so it is not taken out as it is when it `reached` no one.
   */
  abandoned?: boolean;
  status?: number;
  outputTokens?: number;
}

export interface Pick {
  /** Endpoints in order of preference: the first is the choice, the rest are fallbacks. */
  endpoints: EndpointConfig[];
  /** Called once per endpoint tried, when its request ends (in-flight accounting, prefix index, health). */
  release(endpoint: EndpointConfig, outcome: RequestOutcome): void;
  /**
   * Called when the request goes on to `endpoint`, a fallback, after the release of the endpoint before it: from then
   * until that endpoint's release the request is counted there (in-flight, batch slot, priority, prefix index), not
   * on the one that failed.
   */
  fallback?(endpoint: EndpointConfig): void;
}

export interface EndpointPicker {
  /** Resolves with a pick, or rejects with a GatewayError (429 shed, 503 no endpoint / queue full / waited too long). */
  pick(req: PickRequest): Promise<Pick> | Pick;
  /** The tokens (prompt + output) a request to the pool can use at most, as its engines report; undefined when unknown. */
  contextWindow?(pool: string): number | undefined;
}
