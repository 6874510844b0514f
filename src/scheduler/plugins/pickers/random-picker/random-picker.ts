// Picks uniformly at random, ignoring scores: the routing benchmark's random baseline.
import { z } from 'zod';
import type { EndpointState } from '../../../endpoint-state.js';
import type { Picker, PluginFactory } from '../../../plugin-types.js';

export const RANDOM_PICKER = 'random-picker';

const params = z.object({}).strict();

/**
 * A uniformly shuffled order (Fisher–Yates): the first is the choice, the rest the fallbacks.
 * @example randomPicker('random-picker', {}, deps)
 */
export const randomPicker: PluginFactory<Picker> = (name, raw, deps) => {
  params.parse(raw ?? {});
  return {
    type: RANDOM_PICKER,
    name,
    pick(_ctx, candidates) {
      const out: EndpointState[] = candidates.slice();
      for (let i = out.length - 1; i > 0; i--) {
        const j = Math.floor(deps.random() * (i + 1));
        const t = out[i];
        out[i] = out[j];
        out[j] = t;
      }
      return out;
    },
  } satisfies Picker;
};
