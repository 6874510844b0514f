// Prefers endpoints with more free KV cache.
import { z } from 'zod';
import type { Scorer, PluginFactory } from '../../../plugin-types.js';

export const KV_CACHE_UTILIZATION_SCORER = 'kv-cache-utilization-scorer';

const params = z.object({}).strict();

/**
 * 1 − KV-cache usage (scraped, plus the prompts sent since when the cache size is known).
 * @example kvCacheUtilizationScorer('kv-cache-utilization-scorer', {}, deps)
 */
export const kvCacheUtilizationScorer: PluginFactory<Scorer> = (name, raw) => {
  params.parse(raw ?? {});
  return {
    type: KV_CACHE_UTILIZATION_SCORER,
    name,
    score(_ctx, candidates, out) {
      for (let i = 0; i < candidates.length; i++) out[i] = 1 - candidates[i].kvCacheUsage;
      return true;
    },
  } satisfies Scorer;
};
