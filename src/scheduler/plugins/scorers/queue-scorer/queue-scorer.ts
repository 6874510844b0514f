// Prefers endpoints where a request would wait behind fewer others, relative to the rest of the candidates.
import { z } from 'zod';
import type { Scorer, PluginFactory } from '../../../plugin-types.js';

export const QUEUE_SCORER = 'queue-scorer';

const params = z.object({}).strict();

/**
 * (maxQ − q) / (maxQ − minQ) over the candidates' queues, 1 for all when equal. q is what a request sent now would
 * wait behind (EndpointState.wouldWait): the scraped waiting plus picks since, or its place behind a full batch once
 * the batch capacity is known, so an exactly full batch does not look as good as one with free slots.
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
        const q = ep.wouldWait;
        if (q < min) min = q;
        if (q > max) max = q;
      }
      const range = max - min;
      for (let i = 0; i < candidates.length; i++) out[i] = range === 0 ? 1 : (max - candidates[i].wouldWait) / range;
      return true;
    },
  } satisfies Scorer;
};
