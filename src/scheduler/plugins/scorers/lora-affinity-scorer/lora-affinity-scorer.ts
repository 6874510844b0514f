// Prefers endpoints that already hold the requested LoRA adapter, then those with room to load it.
import { z } from 'zod';
import type { Scorer, PluginFactory } from '../../../plugin-types.js';
import type { EndpointState } from '../../../endpoint-state.js';

export const LORA_AFFINITY_SCORER = 'lora-affinity-scorer';

const params = z.object({}).strict();

/** Resident 1.0, a free adapter slot 0.8, already waiting to load 0.6, otherwise 0 (the Inference Extension's values). */
export function loraAffinity(ep: EndpointState, adapter: string): number {
  const lora = ep.lora;
  if (!lora) return 0;
  if (lora.running.has(adapter)) return 1;
  if (lora.inUse < lora.maxLoras) return 0.8;
  if (lora.waiting.has(adapter)) return 0.6;
  return 0;
}

/**
 * Abstains for base-model requests, so it only weighs in when the request targets an adapter.
 * @example loraAffinityScorer('lora-affinity-scorer', {}, deps)
 */
export const loraAffinityScorer: PluginFactory<Scorer> = (name, raw) => {
  params.parse(raw ?? {});
  return {
    type: LORA_AFFINITY_SCORER,
    name,
    score(ctx, candidates, out) {
      if (!ctx.adapter) return false;
      const adapter = ctx.request.targetModel;
      for (let i = 0; i < candidates.length; i++) out[i] = loraAffinity(candidates[i], adapter);
      return true;
    },
  } satisfies Scorer;
};
