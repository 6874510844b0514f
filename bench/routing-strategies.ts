// The strategies the routing benchmark compares, each an EndpointPickerConfig for the gateway's own scheduler.
import type { EndpointPickerConfigSpec } from '../src/config/inference-kinds.js';
import { DEFAULT_PICKER_CONFIG } from '../src/scheduler/default-picker-config.js';

export type StrategyName = 'round-robin' | 'least-requests' | 'round-robin+fc' | 'tollgate';

/** The baseline every ratio and the goodput SLO are measured against. */
export const BASELINE: StrategyName = 'round-robin';
/** The same picker as the baseline behind tollgate's flow control: what tollgate's scoring adds on its own. */
export const FLOW_CONTROL_BASELINE: StrategyName = 'round-robin+fc';

/**
 * round-robin: each endpoint in turn, every request sent at once (flow control off), as a Kubernetes Service or a
 * plain load balancer spreads requests; the baseline of the targets. least-requests: fewest waiting + running,
 * also sent at once (Envoy's least-request balancing, with the engines' own counts). round-robin+fc: round-robin
 * behind tollgate's flow control (holding at batch capacity, priority, shedding). tollgate: the default profile
 * with flow control. Flow control is told the engines' batch capacity (`batchCapacity`, vLLM max-num-seqs), as an
 * operator who deploys them would.
 */
export function strategies(batchCapacity: number): Record<StrategyName, EndpointPickerConfigSpec> {
  const flowControl = { enabled: true, batchCapacity };
  return {
    'round-robin': { plugins: [{ type: 'round-robin-picker' }], flowControl: { enabled: false } },
    'least-requests': { plugins: [{ type: 'least-requests-scorer' }, { type: 'max-score-picker' }], flowControl: { enabled: false } },
    'round-robin+fc': { plugins: [{ type: 'round-robin-picker' }], flowControl },
    tollgate: { ...DEFAULT_PICKER_CONFIG, flowControl },
  };
}

export const STRATEGY_NAMES: StrategyName[] = ['round-robin', 'least-requests', 'round-robin+fc', 'tollgate'];
/** What a run compares unless told otherwise; round-robin+fc, which isolates what the scoring adds, on request. */
export const DEFAULT_STRATEGIES: StrategyName[] = ['round-robin', 'least-requests', 'tollgate'];
