// How long a model-server step takes: the fitted vLLM figures of the Inference Extension's original simulator.

/** Seconds to prefill `uncachedTokens` prompt tokens (cached prefix blocks cost nothing). */
export function prefillSeconds(uncachedTokens: number): number {
  return Math.max(0.04, 6.769e-5 * uncachedTokens + 0.01969);
}

/** Seconds for one decode step producing one token for each of `batch` running sequences. */
export function decodeStepSeconds(batch: number): number {
  return 0.014 + 1.03e-4 * batch;
}
