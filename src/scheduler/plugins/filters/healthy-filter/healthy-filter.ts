// Keeps endpoints that are healthy and whose metrics are fresh; always first in every profile.
import { z } from 'zod';
import { keepEndpoints } from '../../../keep-endpoints.js';
import type { Filter, PluginFactory } from '../../../plugin-types.js';

export const HEALTHY_FILTER = 'healthy-filter';

const params = z.object({}).strict();

/**
 * Drops endpoints that failed their last scrapes, were reported unreachable, or were not scraped within staleAfter;
 * and those resting after failed answers (5xx, 429) while others the request may use (its subset hint) remain: an
 * engine answering everything 503 looks idle and holds the prompt's prefix, so scoring alone kept it first and every
 * request paid a wasted attempt. A request pinned to a resting endpoint (a Responses API follow-up) still goes there.
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
      // Judged within the subset hint, wherever the subset filter runs: awake endpoints it excludes are no alternative.
      const subset = ctx.request.subset;
      const anyAwake = subset && awake !== eligible ? awake.some((ep) => subset.has(ep.address)) : awake.length > 0;
      return anyAwake ? awake : eligible;
    },
  } satisfies Filter;
};
