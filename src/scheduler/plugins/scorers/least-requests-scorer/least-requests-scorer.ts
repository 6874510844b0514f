// Prefers endpoints with fewer requests in total (waiting + running), for pools where batch size, not queueing, drives latency.
import { z } from 'zod';
import type { Scorer, PluginFactory } from '../../../plugin-types.js';

export const LEAST_REQUESTS_SCORER = 'least-requests-scorer';

const params = z.object({}).strict();

/**
 * (maxL − l) / (maxL − minL) over each candidate's load: scraped waiting + running plus picks since
 * the scrape, never below this gateway's own in-flight count. Alone, it is the routing benchmark's
 * least-requests baseline.
 * @example leastRequestsScorer('least-requests-scorer', {}, deps)
 */
export const leastRequestsScorer: PluginFactory<Scorer> = (name, raw) => {
  params.parse(raw ?? {});
  return {
    type: LEAST_REQUESTS_SCORER,
    name,
    score(_ctx, candidates, out) {
      let min = Infinity;
      let max = -Infinity;
      for (const ep of candidates) {
        const l = ep.load;
        if (l < min) min = l;
        if (l > max) max = l;
      }
      const range = max - min;
      for (let i = 0; i < candidates.length; i++) out[i] = range === 0 ? 1 : (max - candidates[i].load) / range;
      return true;
    },
  } satisfies Scorer;
};
