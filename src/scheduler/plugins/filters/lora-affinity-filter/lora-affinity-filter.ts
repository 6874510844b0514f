// For adapter requests, keeps the endpoints that hold or are loading the adapter, else those with a free adapter slot.
import { z } from 'zod';
import type { Filter, PluginFactory } from '../../../plugin-types.js';

export const LORA_AFFINITY_FILTER = 'lora-affinity-filter';

const params = z.object({}).strict();

/**
 * Base-model requests pass untouched; when no endpoint holds the adapter or has room for it, all candidates stay.
 * @example loraAffinityFilter('lora-affinity-filter', {}, deps)
 */
export const loraAffinityFilter: PluginFactory<Filter> = (name, raw) => {
  params.parse(raw ?? {});
  return {
    type: LORA_AFFINITY_FILTER,
    name,
    filter(ctx, candidates) {
      if (!ctx.adapter) return candidates;
      const adapter = ctx.request.targetModel;
      const holding = candidates.filter((ep) => ep.lora !== null && (ep.lora.running.has(adapter) || ep.lora.waiting.has(adapter)));
      if (holding.length > 0) return holding;
      const room = candidates.filter((ep) => ep.lora !== null && ep.lora.inUse < ep.lora.maxLoras);
      return room.length > 0 ? room : candidates;
    },
  } satisfies Filter;
};
