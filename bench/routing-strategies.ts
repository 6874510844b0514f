// The strategies the routing benchmark compares, each an EndpointPickerConfig for the gateway's own scheduler.
import type { EndpointPickerConfigSpec } from '../src/config/inference-kinds.js';
import { DEFAULT_PICKER_CONFIG } from '../src/scheduler/default-picker-config.js';

export type StrategyName = 'random' | 'least-requests' | 'tollgate';

/**
 * There is no round-robin plugin yet, and a profile without scorers ties every endpoint (max-score-picker then
 * picks at random), so the baseline is `random-picker`: uniform choice, the same load spread as round-robin on
 * average but burstier. It is labelled "random", not round-robin.
 */
export const STRATEGIES: Record<StrategyName, EndpointPickerConfigSpec> = {
  random: { plugins: [{ type: 'random-picker' }] },
  'least-requests': { plugins: [{ type: 'least-requests-scorer' }, { type: 'max-score-picker' }] },
  tollgate: DEFAULT_PICKER_CONFIG,
};

export const STRATEGY_NAMES = Object.keys(STRATEGIES) as StrategyName[];
