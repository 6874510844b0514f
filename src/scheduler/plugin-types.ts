// The plugin seams of the picker's pipeline (filters → weighted scorers → picker), as in the Inference Extension's scheduler.
import type { GatewaySettings } from '../config/settings.js';
import type { EndpointState } from './endpoint-state.js';
import type { PickRequest } from './types.js';

export type SchedulerSettings = GatewaySettings['scheduler'];

/** What every plugin sees about the request being scheduled. One per decision. */
export interface CycleContext {
  readonly request: PickRequest;
  readonly now: number;
  /** request.targetModel is a LoRA adapter of this pool rather than its base model. */
  readonly adapter: boolean;
}

export interface PluginBase {
  /** The registered kebab-case type, e.g. 'queue-scorer'. */
  readonly type: string;
  /** The name in the EndpointPickerConfig (the type unless given), so one type can be configured twice. */
  readonly name: string;
  /** Called with the chosen endpoint once the decision is made (the prefix index learns the prompt's blocks). */
  preRequest?(ctx: CycleContext, chosen: EndpointState): void;
  /** The request went on to a fallback endpoint (Pick.fallback), any time after its decision: that one serves it now. */
  fallback?(ctx: CycleContext, endpoint: EndpointState): void;
  /** The endpoint left the pool: drop what is kept about it. */
  forget?(endpoint: EndpointState): void;
}

export interface Filter extends PluginBase {
  /** The candidates that may serve the request (the same array when all may). */
  filter(ctx: CycleContext, candidates: readonly EndpointState[]): readonly EndpointState[];
}

export interface Scorer extends PluginBase {
  /**
   * Writes a score per candidate into out[i] (the engine clamps to [0,1] and applies the weight).
   * Returns false to abstain for this request (e.g. LoRA affinity for a base-model request).
   */
  score(ctx: CycleContext, candidates: readonly EndpointState[], out: Float64Array): boolean;
}

export interface Picker extends PluginBase {
  /** All candidates in order of preference: the choice first, then the fallbacks. */
  pick(ctx: CycleContext, candidates: readonly EndpointState[], totals: Float64Array): EndpointState[];
}

export type Plugin = Filter | Scorer | Picker;

export interface PluginDeps {
  /** Replaced when the settings are reloaded: read it per decision, not in the factory. */
  settings: SchedulerSettings;
  /** In [0, 1), like Math.random; injected so tests are deterministic. */
  random: () => number;
  observePrefixHitRatio(ratio: number): void;
}

/** Validates `params` (zod), applies defaults, precomputes, and returns the instance. */
export type PluginFactory<P extends Plugin> = (name: string, params: unknown, deps: PluginDeps) => P;
