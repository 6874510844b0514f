// The strategies the routing benchmark compares, each an EndpointPickerConfig for the gateway's own scheduler.
import type { EndpointPickerConfigSpec } from '../src/config/inference-kinds.js';
import { DEFAULT_PICKER_CONFIG } from '../src/scheduler/default-picker-config.js';

export type StrategyName = 'round-robin' | 'least-requests' | 'tollgate';

/** The baseline every ratio and the goodput SLO are measured against. */
export const BASELINE: StrategyName = 'round-robin';

/**
 * round-robin: `round-robin-picker` alone (each endpoint in turn, ignoring load) — the baseline the targets
 * are stated against. least-requests: fewest waiting + running. tollgate: the default picker config.
 */
export const STRATEGIES: Record<StrategyName, EndpointPickerConfigSpec> = {
  'round-robin': { plugins: [{ type: 'round-robin-picker' }] },
  'least-requests': { plugins: [{ type: 'least-requests-scorer' }, { type: 'max-score-picker' }] },
  tollgate: DEFAULT_PICKER_CONFIG,
};

export const STRATEGY_NAMES = Object.keys(STRATEGIES) as StrategyName[];
