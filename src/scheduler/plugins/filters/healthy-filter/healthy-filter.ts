// Keeps endpoints that are healthy and whose metrics are fresh; always first in every profile.
import { z } from 'zod';
import type { EndpointState } from '../../../endpoint-state.js';
import type { Filter, PluginFactory } from '../../../plugin-types.js';

export const HEALTHY_FILTER = 'healthy-filter';

const params = z.object({}).strict();

/**
 * Drops endpoints that failed their last scrapes, were reported unreachable, or were not scraped within staleAfter.
 * @example healthyFilter('healthy-filter', {}, deps)
 */
export const healthyFilter: PluginFactory<Filter> = (name, raw, deps) => {
  params.parse(raw ?? {});
  return {
    type: HEALTHY_FILTER,
    name,
    filter(ctx, candidates) {
      // Per decision, not in the factory: a settings reload changes it under a compiled profile.
      const staleAfter = deps.settings.staleAfter;
      let out: EndpointState[] | null = null;
      for (let i = 0; i < candidates.length; i++) {
        const ok = candidates[i].isEligible(ctx.now, staleAfter);
        // Allocate only once an endpoint is dropped: usually every endpoint is fine.
        if (!ok && !out) out = candidates.slice(0, i);
        else if (ok && out) out.push(candidates[i]);
      }
      return out ?? candidates;
    },
  } satisfies Filter;
};
