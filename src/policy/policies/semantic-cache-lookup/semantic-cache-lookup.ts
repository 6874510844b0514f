// SemanticCacheLookup: embeds the user prompt and answers from the closest cached answer above a similarity
// threshold, within one tenant (app, product or, explicitly, global), one model and (by default) one context.
// Embedding or index failures are misses, counted; SemanticCachePopulate stores the answer of a miss.
import { createHash } from 'node:crypto';
import { semanticCacheLookupSpec } from '../../../config/apim-kinds.js';
import type { RequestContext } from '../../../gateway/context.js';
import type { OpenAIBody } from '../../../gateway/openai-request.js';
import { UNSHAPED, type AnswerConfig, type AnswerShapedCache } from '../../caching/answer-config.js';
import { cacheResourcesOf, type CacheDeps } from '../../caching/cache-resources.js';
import { compileScope } from '../../caching/cache-scope.js';
import { STREAMABLE, cachedAnswer, serveHit } from '../../caching/cached-answer.js';
import { clientDirectives } from '../../caching/client-directives.js';
import { answerShape, contextDigest, promptMediaDigest, userPrompt } from '../../caching/prompt-text.js';
import { forwardedQuery, upstreamOf } from '../../caching/request-key.js';
import { forgetSemanticMiss, leaveSemanticMiss } from '../../caching/semantic-handoff.js';
import { requestStreamUsage } from '../../../gateway/stream-usage.js';
import type { VectorIndex } from '../../../store/vectors/vector-index.js';
import type { ApimState, PolicyFactory } from '../../types.js';
import { embeddingsClient } from './embeddings-client.js';

export const SEMANTIC_CACHE_LOOKUP = 'semantic-cache-lookup';

/**
 * @example semanticCacheLookup('faq', { embeddings: { url: 'http://emb:8000/v1/embeddings', model: 'e5' },
 *   similaritySearch: { threshold: 0.95 }, scope: 'product' }, deps)
 */
export const semanticCacheLookup = ((name: string, spec: unknown, deps: CacheDeps) => {
  const s = semanticCacheLookupSpec.parse(spec);
  const resources = cacheResourcesOf(deps);
  const resource = s.cacheResource ?? name;
  const indexIn = (namespace: string): VectorIndex =>
    resources.vectorIndex({ policy: name, flow: deps }, resource, s.store, { maxEntriesPerScope: s.maxEntriesPerScope, embeddingsModel: s.embeddings.model }, namespace);
  // Its compiled flow configures it before serving (configureAnswers); got now, a backend it cannot have is refused here.
  let answers: AnswerConfig = UNSHAPED;
  let index = indexIn(answers.namespace);
  const stats = resources.stats(name);
  const embed = embeddingsClient(s.embeddings);
  const scopeOf = compileScope(s.scope);
  const threshold = s.similaritySearch.threshold;
  const source = s.userPromptSource;

  /** Counted only when the request was looked up: one with `no-cache` is counted as bypassed, as ResponseCache does. */
  const miss = (ctx: RequestContext, lookedUp = true) => {
    if (lookedUp) stats.misses++;
    ctx.responseHeaders['x-cache'] = 'MISS';
  };

  const mediaSuffix = (body: OpenAIBody) => {
    const media = promptMediaDigest(body, source);
    return media ? `\n${media}` : '';
  };

  /**
   * Tenant, models, upstream, query string, the answer's shape and context, hashed: index keys carry no names and no
   * prompt text. The embeddings model too: a shared index (Redis, PostgreSQL) holds the vectors of other gateways, and
   * of this one before its model changed, and two models' vectors are not comparable however alike their size. And
   * what the requesting product's own templates do to answers (the index's namespace holds the gateway's).
   */
  const scopeKey = (tenant: string, ctx: RequestContext, state: ApimState, body: OpenAIBody) =>
    createHash('sha256')
      .update(`${resource}\n${s.embeddings.model}\n${tenant}\n${answers.productPart(state.product?.name)}\n${ctx.model}\n${ctx.targetModel ?? ctx.model}\n${upstreamOf(ctx) ?? ''}\n${forwardedQuery(ctx) ?? ''}\n${answerShape(ctx.operation, body)}\n${s.matchContext ? contextDigest(body, source) : ''}${mediaSuffix(body)}`)
      .digest('base64url');

  async function lookup(ctx: RequestContext, state: ApimState, tenant: string, scope: string, prompt: string, search: boolean): Promise<void> {
    let vector: Float32Array;
    try {
      vector = await embed(prompt);
    } catch {
      stats.embeddingFailures++;
      return miss(ctx, search);
    }
    const asLookedUp = (sent: RequestContext) => sent.body !== undefined && userPrompt(sent.body, source) === prompt && scopeKey(tenant, sent, state, sent.body) === scope;
    leaveSemanticMiss(ctx, { lookup: name, index, scope, vector, prompt, maxEntryBytes: s.maxEntryBytes, cacheScope: s.scope, stats, asLookedUp });
    // The answer SemanticCachePopulate keeps must carry usage, as a later hit's client may ask for it.
    requestStreamUsage(ctx);
    if (!search) return miss(ctx, false);
    let match;
    try {
      match = await index.search(scope, vector, threshold);
    } catch {
      stats.storeErrors++;
      return miss(ctx);
    }
    const direct = match && cachedAnswer(ctx, match.value, { 'x-cache': 'HIT', 'x-semantic-similarity': match.similarity.toFixed(4) });
    if (!direct) return miss(ctx);
    stats.hits++;
    forgetSemanticMiss(ctx);
    serveHit(ctx, direct);
  }

  return {
    type: SEMANTIC_CACHE_LOOKUP,
    name,
    configureAnswers(config: AnswerConfig) {
      answers = config;
      index = indexIn(config.namespace);
    },
    admit(ctx: RequestContext, state: ApimState) {
      const body = ctx.body;
      const tenant = scopeOf(ctx, state);
      const prompt = body && ctx.operation && STREAMABLE.has(ctx.operation) ? userPrompt(body, source) : undefined;
      const client = clientDirectives(ctx);
      if (!body || tenant === undefined || prompt === undefined || !client.store) {
        stats.bypassed++;
        return;
      }
      if (client.lookup) stats.lookups++;
      else stats.bypassed++;
      return lookup(ctx, state, tenant, scopeKey(tenant, ctx, state, body), prompt, client.lookup);
    },
  } satisfies AnswerShapedCache;
}) satisfies PolicyFactory;
