// ResponseCache: exact-match answers keyed on the normalized request (models, query string, prompt and every field
// that shapes the answer), per app, product or (explicitly) globally; hits skip the model server, streamed requests get
// the cached answer replayed as SSE; only complete 2xx answers to the request as looked up are stored.
import { responseCacheSpec } from '../../../config/apim-kinds.js';
import type { RequestContext } from '../../../gateway/context.js';
import type { ResponseFlow } from '../../../gateway/hooks.js';
import type { CacheStore } from '../../../store/caches/cache-store.js';
import { UNSHAPED, type AnswerConfig, type AnswerShapedCache } from '../../caching/answer-config.js';
import { cacheResourcesOf, type CacheDeps } from '../../caching/cache-resources.js';
import { compileScope } from '../../caching/cache-scope.js';
import { clientDirectives } from '../../caching/client-directives.js';
import { STREAMABLE, cachedAnswer, serveHit } from '../../caching/cached-answer.js';
import { isDeterministic, requestKey } from '../../caching/request-key.js';
import { captureAnswer, type AnswerCache } from '../../caching/stream-assembler.js';
import { createsStoredResponse } from '../../../gateway/stored-responses.js';
import { requestStreamUsage } from '../../../gateway/stream-usage.js';
import type { ApimState, PolicyFactory } from '../../types.js';

export const RESPONSE_CACHE = 'response-cache';

const CACHED_OPERATIONS = new Set(['chat.completions', 'completions', 'embeddings', 'responses']);
const HIT = { 'x-cache': 'HIT' };

/**
 * @example responseCache('answers', { expirySettings: { timeoutInSeconds: 600 }, scope: 'product' }, deps)
 */
export const responseCache = ((name: string, spec: unknown, deps: CacheDeps) => {
  const s = responseCacheSpec.parse(spec);
  const resources = cacheResourcesOf(deps);
  const resource = s.cacheResource ?? name;
  const storeIn = (namespace: string): CacheStore =>
    resources.answerStore({ policy: name, flow: deps }, resource, s.store, { maxBytes: s.maxBytes, maxEntryBytes: s.maxEntryBytes }, namespace);
  // Its compiled flow configures it before serving (configureAnswers); got now, a backend it cannot have is refused here.
  let answers: AnswerConfig = UNSHAPED;
  let store = storeIn(answers.namespace);
  const stats = resources.stats(name);
  const cache: AnswerCache = { maxEntryBytes: s.maxEntryBytes, cacheScope: s.scope, stats };
  const scopeOf = compileScope(s.scope);
  const ttlMs = s.expirySettings.timeoutInSeconds * 1000;
  /** The key of each request that missed, for its response flow. */
  const pending = new WeakMap<RequestContext, string>();
  const keyOf = (ctx: RequestContext, state: ApimState, tenant: string | undefined) => `${tenant}:${answers.productPart(state.product?.name)}${requestKey(ctx)}`;

  const miss = (ctx: RequestContext) => {
    stats.misses++;
    ctx.responseHeaders['x-cache'] = 'MISS';
  };
  const answer = (ctx: RequestContext, got: Buffer | undefined) => {
    const direct = got && cachedAnswer(ctx, got, HIT);
    if (!direct) return miss(ctx);
    stats.hits++;
    pending.delete(ctx);
    serveHit(ctx, direct);
  };
  const failed = (ctx: RequestContext) => {
    stats.storeErrors++;
    miss(ctx);
  };
  const put = (key: string, value: Buffer) => {
    try {
      const done = store.set(key, value, ttlMs);
      stats.stored++;
      if (done instanceof Promise) done.catch(() => stats.storeErrors++);
    } catch {
      stats.storeErrors++;
    }
  };

  return {
    type: RESPONSE_CACHE,
    name,
    answerEdits: 'none',
    configureAnswers(config: AnswerConfig) {
      answers = config;
      store = storeIn(config.namespace);
    },
    admit(ctx: RequestContext, state: ApimState) {
      const tenant = scopeOf(ctx, state);
      const op = ctx.operation;
      // A stored response's answer names a response on the server that made it, owned by the app that asked: replayed,
      // it gives a caller an id it cannot follow up or read (another app's, or one never stored).
      const cacheable = ctx.body && op && CACHED_OPERATIONS.has(op) && (!ctx.stream || STREAMABLE.has(op)) && !createsStoredResponse(ctx);
      if (!cacheable || tenant === undefined || (!s.cacheNonDeterministic && !isDeterministic(ctx))) {
        stats.bypassed++;
        return;
      }
      const client = clientDirectives(ctx);
      const key = keyOf(ctx, state, tenant);
      if (client.store) {
        pending.set(ctx, key);
        // An answer kept without usage would reach later clients without it, those who ask for it included.
        requestStreamUsage(ctx);
      }
      if (!client.lookup) {
        stats.bypassed++;
        ctx.responseHeaders['x-cache'] = 'MISS';
        return;
      }
      stats.lookups++;
      let got;
      try {
        got = store.get(key);
      } catch {
        return failed(ctx);
      }
      if (!(got instanceof Promise)) return answer(ctx, got);
      return got.then(
        (v) => answer(ctx, v),
        () => failed(ctx),
      );
    },
    respond(ctx: RequestContext, state: ApimState, status: number): ResponseFlow | undefined {
      const key = pending.get(ctx);
      if (key === undefined) return undefined;
      pending.delete(ctx);
      if (status < 200 || status >= 300) return undefined;
      // The key is the request as it went upstream: a policy after the lookup that changed it (a token cap, a prompt
      // rewritten, `store: false` dropped) made this the answer to another request, which a later one asking the
      // looked-up request must not get.
      if (keyOf(ctx, state, scopeOf(ctx, state)) !== key || createsStoredResponse(ctx)) {
        stats.changedAfterLookup++;
        return undefined;
      }
      return captureAnswer(ctx.stream, cache, state, (answer) => put(key, answer));
    },
  } satisfies AnswerShapedCache;
}) satisfies PolicyFactory;
