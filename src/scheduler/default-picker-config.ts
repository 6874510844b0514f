// The profile a pool runs when no EndpointPickerConfig applies to it.
import type { EndpointPickerConfigSpec } from '../config/inference-kinds.js';

/**
 * Queue 3, KV cache 2, prefix 4, LoRA affinity 6 (LoRA abstains for base-model requests). Chosen by
 * running this scheduler in front of 8 src/sim engines on a simulated clock, near each workload's
 * knee (TTFT p90/p99, mean of 4 seeds), against the Inference Extension v1.5 weights (queue 2, KV 2,
 * prefix 3): shared prefixes at 90 req/s 1.83/3.13 s vs 2.16/4.22 s; chat at 60 req/s equal
 * (5.08/5.92 s vs 5.08/5.96 s); multi-LoRA at 28 req/s 0.15/3.0 s vs 0.23/13.0 s with LoRA weight 2.
 * A lighter prefix weight tips the shared-prefix workload into collapse near the knee (queue 3,
 * KV 2, prefix 3: 19 s p90; queue 2, KV 2, prefix 1: 23 s); a heavier one (prefix 5) costs tail latency.
 */
export const DEFAULT_PICKER_CONFIG: EndpointPickerConfigSpec = {
  plugins: [
    { type: 'queue-scorer' },
    { type: 'kv-cache-utilization-scorer' },
    { type: 'prefix-cache-scorer' },
    { type: 'lora-affinity-scorer' },
    { type: 'max-score-picker' },
  ],
  schedulingProfiles: [
    {
      name: 'default',
      plugins: [
        { pluginRef: 'queue-scorer', weight: 3 },
        { pluginRef: 'kv-cache-utilization-scorer', weight: 2 },
        { pluginRef: 'prefix-cache-scorer', weight: 4 },
        { pluginRef: 'lora-affinity-scorer', weight: 6 },
        { pluginRef: 'max-score-picker' },
      ],
    },
  ],
};
