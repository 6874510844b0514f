// SemanticCachePopulate: stores a complete 2xx answer (whole JSON, or a finished stream rebuilt) under the prompt
// embedding that SemanticCacheLookup computed on the miss, in that lookup's index and scope, for ttlInSeconds.
import { createHash } from 'node:crypto';
import { semanticCachePopulateSpec } from '../../../config/apim-kinds.js';
import type { RequestContext } from '../../../gateway/context.js';
import type { ResponseFlow } from '../../../gateway/hooks.js';
import { takeSemanticMiss, type SemanticMiss } from '../../caching/semantic-handoff.js';
import { captureAnswer } from '../../caching/stream-assembler.js';
import type { ApimState, Policy, PolicyFactory } from '../../types.js';

export const SEMANTIC_CACHE_POPULATE = 'semantic-cache-populate';

function store(miss: SemanticMiss, value: Buffer, ttlMs: number): void {
  try {
    const key = createHash('sha256').update(miss.prompt).digest('base64url');
    const done = miss.index.add(miss.scope, key, miss.vector, value, ttlMs);
    miss.stats.stored++;
    if (done instanceof Promise) done.catch(() => miss.stats.storeErrors++);
  } catch {
    miss.stats.storeErrors++;
  }
}

/** @example semanticCachePopulate('faq-populate', { ttlInSeconds: 600, lookupPolicy: 'faq' }, deps) */
export const semanticCachePopulate: PolicyFactory = (name, spec) => {
  const s = semanticCachePopulateSpec.parse(spec);
  const ttlMs = s.ttlInSeconds * 1000;
  return {
    type: SEMANTIC_CACHE_POPULATE,
    name,
    answerEdits: 'none',
    respond(ctx: RequestContext, state: ApimState, status: number): ResponseFlow | undefined {
      const miss = takeSemanticMiss(ctx, s.lookupPolicy);
      if (!miss || status < 200 || status >= 300) return undefined;
      if (!miss.asLookedUp(ctx)) {
        miss.stats.changedAfterLookup++;
        return undefined;
      }
      return captureAnswer(ctx.stream, miss, state, (answer) => store(miss, answer, ttlMs));
    },
  } satisfies Policy;
};
