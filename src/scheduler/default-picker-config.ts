// The profile a pool runs when no EndpointPickerConfig applies to it.
import type { EndpointPickerConfigSpec } from '../config/inference-kinds.js';

/**
 * Queue 3, least requests 1, KV cache 2, prefix 4, LoRA affinity 6 (LoRA abstains for base-model requests). Chosen by
 * running this scheduler in front of 8 src/sim engines on a simulated clock, near each workload's
 * knee (TTFT p90/p99, mean of 4 seeds), against the Inference Extension v1.5 weights (queue 2, KV 2,
 * prefix 3): shared prefixes at 90 req/s 1.83/3.13 s vs 2.16/4.22 s; chat at 60 req/s equal
 * (5.08/5.92 s vs 5.08/5.96 s); multi-LoRA at 28 req/s 0.15/3.0 s vs 0.23/13.0 s with LoRA weight 2.
 * A lighter prefix weight tips the shared-prefix workload into collapse near the knee (queue 3,
 * KV 2, prefix 3: 19 s p90; queue 2, KV 2, prefix 1: 23 s); a heavier one (prefix 5) costs tail latency.
 * Least requests (waiting + running) breaks the ties the queue scorer leaves while no engine queues, which the
 * KV scorer alone broke towards the engine with the shortest prompts in flight rather than the fewest sequences
 * (`bench routing`'s workloads, 8 engines of 16 slots, 10 simulated s, mean of 4 seeds, without → with it):
 * shared prefixes TTFT p90 at 45 req/s 0.39 → 0.19 s, at 55 req/s 1.05 → 0.55 s (prefix hits 0.89 → 0.81 of
 * prompt tokens); chat at 35 req/s 0.26 → 0.15 s; multi-LoRA within ±0.05 s at p90. Weight 2 or 3 pulls adapter
 * requests apart (multi-LoRA p99 at 20 req/s 0.3 → 2.9 s).
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
