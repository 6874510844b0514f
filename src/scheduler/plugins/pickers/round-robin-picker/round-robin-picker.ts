// Picks the candidates in turn, ignoring scores: the routing benchmark's round-robin baseline.
import { z } from 'zod';
import type { EndpointState } from '../../../endpoint-state.js';
import type { Picker, PluginFactory } from '../../../plugin-types.js';

export const ROUND_ROBIN_PICKER = 'round-robin-picker';

const params = z.object({}).strict();

/**
 * Each pool compiles its own profile, so the counter is per pool. The k-th decision picks candidate
 * k mod n; the fallbacks follow in rotation order (k+1, k+2, … mod n).
 * @example roundRobinPicker('round-robin-picker', {}, deps)
 */
export const roundRobinPicker: PluginFactory<Picker> = (name, raw) => {
  params.parse(raw ?? {});
  let next = 0;
  return {
    type: ROUND_ROBIN_PICKER,
    name,
    pick(_ctx, candidates) {
      const n = candidates.length;
      const start = next % n;
      next = (start + 1) % n;
      const out = new Array<EndpointState>(n);
      for (let i = 0; i < n; i++) out[i] = candidates[(start + i) % n];
      return out;
    },
  } satisfies Picker;
};
