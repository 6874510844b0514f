// Plugin types by name: what an EndpointPickerConfig may refer to. Built-ins are added by registerBuiltins(), never on import.
import type { Filter, Picker, PluginFactory, Scorer } from './plugin-types.js';
import { HEALTHY_FILTER, healthyFilter } from './plugins/filters/healthy-filter/healthy-filter.js';
import { SUBSET_FILTER, subsetFilter } from './plugins/filters/subset-filter/subset-filter.js';
import { LOW_QUEUE_FILTER, lowQueueFilter } from './plugins/filters/low-queue-filter/low-queue-filter.js';
import { LORA_AFFINITY_FILTER, loraAffinityFilter } from './plugins/filters/lora-affinity-filter/lora-affinity-filter.js';
import { QUEUE_SCORER, queueScorer } from './plugins/scorers/queue-scorer/queue-scorer.js';
import {
  KV_CACHE_UTILIZATION_SCORER,
  kvCacheUtilizationScorer,
} from './plugins/scorers/kv-cache-utilization-scorer/kv-cache-utilization-scorer.js';
import { PREFIX_CACHE_SCORER, prefixCacheScorer } from './plugins/scorers/prefix-cache-scorer/prefix-cache-scorer.js';
import { LORA_AFFINITY_SCORER, loraAffinityScorer } from './plugins/scorers/lora-affinity-scorer/lora-affinity-scorer.js';
import { LEAST_REQUESTS_SCORER, leastRequestsScorer } from './plugins/scorers/least-requests-scorer/least-requests-scorer.js';
import { MAX_SCORE_PICKER, maxScorePicker } from './plugins/pickers/max-score-picker/max-score-picker.js';
import { RANDOM_PICKER, randomPicker } from './plugins/pickers/random-picker/random-picker.js';
import { ROUND_ROBIN_PICKER, roundRobinPicker } from './plugins/pickers/round-robin-picker/round-robin-picker.js';

export type PluginEntry =
  | { kind: 'filter'; factory: PluginFactory<Filter> }
  | { kind: 'scorer'; factory: PluginFactory<Scorer> }
  | { kind: 'picker'; factory: PluginFactory<Picker> };

export class PluginRegistry {
  readonly #entries = new Map<string, PluginEntry>();

  filter(type: string, factory: PluginFactory<Filter>): this {
    return this.#add(type, { kind: 'filter', factory });
  }
  scorer(type: string, factory: PluginFactory<Scorer>): this {
    return this.#add(type, { kind: 'scorer', factory });
  }
  picker(type: string, factory: PluginFactory<Picker>): this {
    return this.#add(type, { kind: 'picker', factory });
  }

  get(type: string): PluginEntry | undefined {
    return this.#entries.get(type);
  }

  types(): string[] {
    return [...this.#entries.keys()];
  }

  #add(type: string, entry: PluginEntry): this {
    if (this.#entries.has(type)) throw new Error(`plugin type "${type}" is already registered`);
    this.#entries.set(type, entry);
    return this;
  }
}

/** Adds every built-in filter, scorer and picker. */
export function registerBuiltins(registry: PluginRegistry): PluginRegistry {
  return registry
    .filter(HEALTHY_FILTER, healthyFilter)
    .filter(SUBSET_FILTER, subsetFilter)
    .filter(LOW_QUEUE_FILTER, lowQueueFilter)
    .filter(LORA_AFFINITY_FILTER, loraAffinityFilter)
    .scorer(QUEUE_SCORER, queueScorer)
    .scorer(KV_CACHE_UTILIZATION_SCORER, kvCacheUtilizationScorer)
    .scorer(PREFIX_CACHE_SCORER, prefixCacheScorer)
    .scorer(LORA_AFFINITY_SCORER, loraAffinityScorer)
    .scorer(LEAST_REQUESTS_SCORER, leastRequestsScorer)
    .picker(MAX_SCORE_PICKER, maxScorePicker)
    .picker(RANDOM_PICKER, randomPicker)
    .picker(ROUND_ROBIN_PICKER, roundRobinPicker);
}
