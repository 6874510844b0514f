// Prefers endpoints with fewer waiting requests, relative to the rest of the candidates.
import { z } from 'zod';
import type { Scorer, PluginFactory } from '../../../plugin-types.js';

export const QUEUE_SCORER = 'queue-scorer';

const params = z.object({}).strict();

/**
 * (maxQ − q) / (maxQ − minQ) over the candidates' queues (scraped waiting plus picks since), 1 for all when equal.
 * @example queueScorer('queue-scorer', {}, deps)
 */
export const queueScorer: PluginFactory<Scorer> = (name, raw) => {
  params.parse(raw ?? {});
  return {
    type: QUEUE_SCORER,
    name,
    score(_ctx, candidates, out) {
      let min = Infinity;
      let max = -Infinity;
      for (const ep of candidates) {
        const q = ep.queue;
        if (q < min) min = q;
        if (q > max) max = q;
      }
      const range = max - min;
      for (let i = 0; i < candidates.length; i++) out[i] = range === 0 ? 1 : (max - candidates[i].queue) / range;
      return true;
    },
  } satisfies Scorer;
};
