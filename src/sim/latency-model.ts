// How long a model-server step takes: the fitted vLLM figures of the Inference Extension's original simulator.

/**
 * Seconds for the prefill part of one step, over every prompt token the step's newly admitted sequences compute
 * (cached prefix blocks cost nothing). The fit charges its floor once per batch, not per sequence.
 */
export function prefillSeconds(uncachedTokens: number): number {
  return Math.max(0.04, 6.769e-5 * uncachedTokens + 0.01969);
}

/**
 * Seconds for one decode step producing one token for each of `batch` running sequences that together hold
 * `kvTokens` tokens (prompt and generated) in the KV cache: attention reads every one of them each step.
 */
export function decodeStepSeconds(batch: number, kvTokens: number): number {
  return 0.014 + 1.026e-4 * batch + 5.353e-7 * kvTokens;
}
