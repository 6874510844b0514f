// The profile a pool runs when no EndpointPickerConfig applies to it.
import type { EndpointPickerConfigSpec } from '../config/inference-kinds.js';

/**
 * The Inference Extension v1.5 defaults (queue 2, KV cache 2, prefix 3) plus LoRA affinity, which
 * abstains for base-model requests. Weights were checked against alternatives in a simulated fleet
 * (see the scheduler README section in the lead's notes); the routing benchmark revisits them.
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
        { pluginRef: 'queue-scorer', weight: 2 },
        { pluginRef: 'kv-cache-utilization-scorer', weight: 2 },
        { pluginRef: 'prefix-cache-scorer', weight: 3 },
        { pluginRef: 'lora-affinity-scorer', weight: 2 },
        { pluginRef: 'max-score-picker' },
      ],
    },
  ],
};
