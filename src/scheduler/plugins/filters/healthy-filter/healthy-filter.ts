// Keeps endpoints that are healthy and whose metrics are fresh; always first in every profile.
import { z } from 'zod';
import { keepEndpoints } from '../../../keep-endpoints.js';
import type { Filter, PluginFactory } from '../../../plugin-types.js';

export const HEALTHY_FILTER = 'healthy-filter';

const params = z.object({}).strict();

/**
 * Drops endpoints that failed their last scrapes, were reported unreachable, or were not scraped within staleAfter;
 * and those resting after failed answers (5xx, 429) while others remain: an engine answering everything 503 looks
 * idle and holds the prompt's prefix, so scoring alone kept it first and every request paid a wasted attempt.
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
      const eligible = keepEndpoints(candidates, (ep) => ep.isEligible(ctx.now, staleAfter));
      const awake = keepEndpoints(eligible, (ep) => !ep.resting(ctx.now));
      return awake.length > 0 ? awake : eligible;
    },
  } satisfies Filter;
};
