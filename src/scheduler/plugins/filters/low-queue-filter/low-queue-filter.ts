// Keeps endpoints whose queue is below a threshold, when any is (the legacy Inference Extension tree's first step).
import { z } from 'zod';
import type { Filter, PluginFactory } from '../../../plugin-types.js';

export const LOW_QUEUE_FILTER = 'low-queue-filter';

const params = z.object({ queueThreshold: z.number().int().min(0).default(128) }).strict();

/**
 * Keeps candidates with queue < queueThreshold; when none qualifies it keeps them all, since
 * refusing every request because all queues are long is the saturation check's job, not a filter's.
 * @example lowQueueFilter('low-queue-filter', { queueThreshold: 64 }, deps)
 */
export const lowQueueFilter: PluginFactory<Filter> = (name, raw) => {
  const { queueThreshold } = params.parse(raw ?? {});
  return {
    type: LOW_QUEUE_FILTER,
    name,
    filter(_ctx, candidates) {
      const low = candidates.filter((ep) => ep.queue < queueThreshold);
      return low.length > 0 ? low : candidates;
    },
  } satisfies Filter;
};
