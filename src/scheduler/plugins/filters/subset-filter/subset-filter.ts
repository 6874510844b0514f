// Keeps only the endpoints the request's subset hint allows (the ext_proc x-gateway-destination-endpoint-subset).
import { z } from 'zod';
import type { Filter, PluginFactory } from '../../../plugin-types.js';

export const SUBSET_FILTER = 'subset-filter';

const params = z.object({}).strict();

/**
 * No hint: every candidate. A hint that matches none leaves none (the request then fails with 503).
 * @example subsetFilter('subset-filter', {}, deps)
 */
export const subsetFilter: PluginFactory<Filter> = (name, raw) => {
  params.parse(raw ?? {});
  return {
    type: SUBSET_FILTER,
    name,
    filter(ctx, candidates) {
      const subset = ctx.request.subset;
      return subset ? candidates.filter((ep) => subset.has(ep.address)) : candidates;
    },
  } satisfies Filter;
};
