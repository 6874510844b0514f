// Picks the highest total score (random among ties) and orders the rest as fallbacks by descending score.
import { z } from 'zod';
import type { EndpointState } from '../../../endpoint-state.js';
import type { Picker, PluginFactory } from '../../../plugin-types.js';

export const MAX_SCORE_PICKER = 'max-score-picker';

const params = z.object({}).strict();

/**
 * Ties break at random so equally good endpoints share the load instead of the first one taking it all.
 * @example maxScorePicker('max-score-picker', {}, deps)
 */
export const maxScorePicker: PluginFactory<Picker> = (name, raw, deps) => {
  params.parse(raw ?? {});
  return {
    type: MAX_SCORE_PICKER,
    name,
    pick(_ctx, candidates, totals) {
      const n = candidates.length;
      let best = -Infinity;
      let ties = 0;
      for (let i = 0; i < n; i++) {
        if (totals[i] > best) {
          best = totals[i];
          ties = 1;
        } else if (totals[i] === best) ties++;
      }
      let nth = Math.floor(deps.random() * ties);
      let chosen = 0;
      for (let i = 0; i < n; i++) {
        if (totals[i] === best && nth-- === 0) {
          chosen = i;
          break;
        }
      }
      const out: EndpointState[] = [candidates[chosen]];
      for (const i of fallbackOrder(totals, n, chosen)) out.push(candidates[i]);
      return out;
    },
  } satisfies Picker;
};

/** Indexes other than `chosen`, by descending total. */
function fallbackOrder(totals: Float64Array, n: number, chosen: number): number[] {
  const order: number[] = [];
  for (let i = 0; i < n; i++) if (i !== chosen) order.push(i);
  if (n > 64) return order.sort((x, y) => totals[y] - totals[x]);
  // Insertion sort: measured 2–3× faster than Array#sort with a comparator up to a few dozen endpoints.
  for (let k = 1; k < order.length; k++) {
    const i = order[k];
    let j = k;
    while (j > 0 && totals[order[j - 1]] < totals[i]) {
      order[j] = order[j - 1];
      j--;
    }
    order[j] = i;
  }
  return order;
}
