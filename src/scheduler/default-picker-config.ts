// The profile a pool runs when no EndpointPickerConfig applies to it.
import type { EndpointPickerConfigSpec } from '../config/inference-kinds.js';

/**
 * Queue 3, least requests 1, KV cache 2, prefix 4, LoRA affinity 6 (LoRA abstains for base-model requests). Chosen by
 * running this scheduler in front of 8 src/sim engines of 16 slots on a simulated clock (`bench routing`'s workloads
 * near each knee, TTFT p90/p99 in s, mean of 4 seeds, one weight changed at a time), against the
 * Inference Extension v1.5 weights (queue 2, KV 2, prefix 3): shared prefixes at 22 req/s 0.27/0.51 vs 0.77/2.02, at
 * 25 req/s 1.18/2.05 vs 2.14/4.96; chat at 30 req/s 0.10/0.29 vs 0.17/0.73; multi-LoRA at 30 req/s 0.63/2.49 vs
 * 0.42/1.08 but at 40 req/s 3.25/7.70 vs 3.40/7.13. Prefix 3 lets shared prefixes collapse sooner (2.25/3.38 at 25),
 * prefix 5 or 6 earlier still (0.92/2.58 and 2.14/3.91 at 22): it outweighs load. Least requests (waiting + running)
 * breaks the ties the queue scorer leaves while no engine queues, which the KV scorer alone broke towards the engine
 * with the shortest prompts in flight rather than the fewest sequences: without it shared prefixes at 22 req/s
 * 0.62/1.92, chat at 30 req/s 0.17/0.73. LoRA affinity 4 or 8 costs multi-LoRA p99 at 30 req/s (6.90 and 2.73).
 */
export const DEFAULT_PICKER_CONFIG: EndpointPickerConfigSpec = {
  plugins: [
    { type: 'queue-scorer' },
    { type: 'least-requests-scorer' },
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
        { pluginRef: 'least-requests-scorer', weight: 1 },
        { pluginRef: 'kv-cache-utilization-scorer', weight: 2 },
        { pluginRef: 'prefix-cache-scorer', weight: 4 },
        { pluginRef: 'lora-affinity-scorer', weight: 6 },
        { pluginRef: 'max-score-picker' },
      ],
    },
  ],
};
