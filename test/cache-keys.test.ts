// What a cache keys on besides the prompt: the query string the model server gets and the upstream it goes to
// (ResponseCache and the semantic cache), and on /v1/completions what shapes the answer without being embedded
// (suffix, echo, a batch of prompts).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryCounterStore } from '../src/store/counters/memory.js';
import { CacheResources } from '../src/policy/caching/cache-resources.js';
import { admit, chatAnswer, respondJson, startEmbeddingsStub, tenant, type EmbeddingsStub } from '../src/policy/caching/testing.js';
import { responseCache } from '../src/policy/policies/response-cache/response-cache.js';
import { semanticCacheLookup } from '../src/policy/policies/semantic-cache-lookup/semantic-cache-lookup.js';
import { semanticCachePopulate } from '../src/policy/policies/semantic-cache-populate/semantic-cache-populate.js';
import { fakeContext, testDeps, type FakeRequest } from '../src/policy/testing.js';
import type { RequestContext } from '../src/gateway/context.js';
import type { PoolConfig, RouteBackend } from '../src/config/runtime-config.js';
import type { Policy } from '../src/policy/types.js';

const state = tenant('app-1');
let emb: EmbeddingsStub;
before(async () => {
  emb = await startEmbeddingsStub();
});
after(() => emb?.close());

/** A cache: its lookup and the policy that stores a miss's answer (the same one for ResponseCache). */
interface Cache {
  lookup: Policy;
  store: Policy;
}

function cacheOf(kind: 'ResponseCache' | 'SemanticCache'): Cache {
  const deps = { ...testDeps(new MemoryCounterStore()), caches: new CacheResources() } as never;
  if (kind === 'ResponseCache') {
    const p = responseCache('answers', {}, deps);
    return { lookup: p, store: p };
  }
  const lookup = semanticCacheLookup('faq', { embeddings: { url: emb.url, model: 'e' }, similaritySearch: { threshold: 0.9 } }, deps);
  return { lookup, store: semanticCachePopulate('faq-populate', {}, deps) };
}

/**
 * Looks `r` up (routed to `backend`, as an HTTPRoute leaves it); on a miss, stores `answer` as the model server's.
 * Returns what the lookup said.
 */
async function ask(cache: Cache, r: FakeRequest, answer: unknown = chatAnswer('fresh'), backend?: RouteBackend): Promise<RequestContext> {
  const ctx = fakeContext({ ...r, body: { temperature: 0, ...r.body } });
  ctx.backend = backend;
  await admit(cache.lookup, ctx, state);
  if (!ctx.directResponse) await respondJson(cache.store, ctx, state, answer);
  return ctx;
}

const hit = (ctx: RequestContext) => ctx.responseHeaders['x-cache'] !== 'MISS' && ctx.directResponse !== undefined;

for (const kind of ['ResponseCache', 'SemanticCache'] as const) {
  describe(`${kind}: the query string`, () => {
    test('another query string the model server gets is another request', async () => {
      const cache = cacheOf(kind);
      await ask(cache, { url: '/v1/chat/completions?api-version=2024-02-01' });
      assert.equal(hit(await ask(cache, { url: '/v1/chat/completions?api-version=2025-04-01' })), false);
      assert.equal(hit(await ask(cache, { url: '/v1/chat/completions?api-version=2024-02-01' })), true);
      assert.equal(hit(await ask(cache, { url: '/v1/chat/completions' })), false);
    });
    test('another HTTPRoute backend (a canary by header, another hostname) or another pool is another request', async () => {
      const cache = cacheOf(kind);
      const url = (u: string): RouteBackend => ({ kind: 'url', url: u, address: new URL(u).host });
      const pool = (name: string): RouteBackend => ({ kind: 'pool', pool: { name, endpoints: [] } as unknown as PoolConfig });
      await ask(cache, {}, chatAnswer('from A'), url('http://stable:8000'));
      // Before: a HIT with stable's answer.
      assert.equal(hit(await ask(cache, {}, chatAnswer('from B'), url('http://canary:8000'))), false);
      assert.equal(hit(await ask(cache, {}, undefined, url('http://stable:8000'))), true);
      assert.equal(hit(await ask(cache, {}, undefined, url('http://canary:8000'))), true);
      assert.equal(hit(await ask(cache, {}, undefined, pool('gpu'))), false);
      assert.equal(hit(await ask(cache, {}, undefined, pool('cpu'))), false);
      assert.equal(hit(await ask(cache, {}, undefined, pool('gpu'))), true);
      // Routed by model name, the model's pool is the upstream: the same as a route to that pool.
      const byModel = fakeContext({ body: { temperature: 0 } });
      byModel.modelConfig = { pool: (pool('gpu') as { pool: PoolConfig }).pool } as RequestContext['modelConfig'];
      await admit(cache.lookup, byModel, state);
      assert.equal(hit(byModel), true);
    });
    test('parameter order and parameters withheld from the model server (a credential) do not count', async () => {
      const cache = cacheOf(kind);
      await ask(cache, { url: '/v1/chat/completions?b=2&a=1' });
      assert.equal(hit(await ask(cache, { url: '/v1/chat/completions?a=1&b=2' })), true);
      const withheld = fakeContext({ url: '/v1/chat/completions?a=1&key=secret&b=2', body: { temperature: 0 } });
      withheld.withheldQuery = new Set(['key']);
      await admit(cache.lookup, withheld, state);
      assert.equal(hit(withheld), true);
    });
  });
}

describe('SemanticCache on /v1/completions', () => {
  const completion = (text: string) => ({ id: 'c', object: 'text_completion', created: 1, model: 'llama', choices: [{ index: 0, text, logprobs: null, finish_reason: 'stop' }] });
  const complete = (body: Record<string, unknown>): FakeRequest => ({ operation: 'completions', url: '/v1/completions', body: { messages: undefined, ...body } });
  const FIM = { prompt: 'def add(a, b):', suffix: '    return total' };

  test('another suffix (fill-in-the-middle) or echo is another answer, at any similarity', async () => {
    const cache = cacheOf('SemanticCache');
    await ask(cache, complete(FIM), completion('    total = a + b'));
    assert.equal(hit(await ask(cache, complete(FIM))), true);
    assert.equal(hit(await ask(cache, complete({ ...FIM, suffix: '    raise ValueError' }))), false);
    assert.equal(hit(await ask(cache, complete({ ...FIM, echo: true }))), false);
  });

  test('a batch of prompts is not cached: one embedding cannot say which answer is which prompt\'s', async () => {
    const cache = cacheOf('SemanticCache');
    const batch = complete({ prompt: ['Paris is', 'Rome is'] });
    const first = await ask(cache, batch);
    assert.equal(first.responseHeaders['x-cache'], undefined, 'not looked up');
    assert.equal(hit(await ask(cache, batch)), false);
    assert.equal(hit(await ask(cache, complete({ prompt: 'Paris is\nRome is' }))), false);
    // One prompt in a list is that prompt.
    await ask(cache, complete({ prompt: ['Paris is'] }), completion(' the capital of France'));
    assert.equal(hit(await ask(cache, complete({ prompt: 'Paris is' }))), true);
  });
});
