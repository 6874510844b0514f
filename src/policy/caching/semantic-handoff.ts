// What SemanticCacheLookup leaves for SemanticCachePopulate on a miss: where and under which prompt embedding the
// answer belongs. Kept per request, beside the request rather than on it, and gone with it.
import type { RequestContext } from '../../gateway/context.js';
import type { VectorIndex } from '../../store/vectors/vector-index.js';
import type { AnswerCache } from './stream-assembler.js';

export interface SemanticMiss extends AnswerCache {
  /** The SemanticCacheLookup policy's name. */
  lookup: string;
  index: VectorIndex;
  /** The index's scope key (tenant, models, shape of the answer). */
  scope: string;
  vector: Float32Array;
  /** The prompt embedded: its answer replaces the one stored for it before (VectorIndex.add's key is its digest). */
  prompt: string;
  /**
   * Whether the request, as it went upstream, still has the scope and prompt it was looked up with: a policy after the
   * lookup that changed them (a token cap, a rewritten prompt) made the answer another request's.
   */
  asLookedUp(ctx: RequestContext): boolean;
}

const misses = new WeakMap<RequestContext, SemanticMiss>();

export function leaveSemanticMiss(ctx: RequestContext, miss: SemanticMiss): void {
  misses.set(ctx, miss);
}

export function forgetSemanticMiss(ctx: RequestContext): void {
  misses.delete(ctx);
}

/** The request's miss (from `lookup`, when named); taken once. */
export function takeSemanticMiss(ctx: RequestContext, lookup?: string): SemanticMiss | undefined {
  const miss = misses.get(ctx);
  if (!miss || (lookup !== undefined && miss.lookup !== lookup)) return undefined;
  misses.delete(ctx);
  return miss;
}
