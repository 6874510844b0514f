// SemanticCacheLookup with SemanticCachePopulate: paraphrase hits, unrelated misses, tenant/model/context scopes,
// stream replay, embedding failures failing open — on every semantic-index backend.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryCounterStore } from '../../../store/counters/memory.js';
import { randomBase62 } from '../../../store/keys.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../../../store/test-databases.js';
import type { Database } from '../../../store/database.js';
import { fakeContext, testDeps, unique, type FakeRequest } from '../../testing.js';
import { CacheResources } from '../../caching/cache-resources.js';
import { admit, chatAnswer, respondJson, ssePayloads, startEmbeddingsStub, streamedText, tenant, type EmbeddingsStub } from '../../caching/testing.js';
import type { ApimState, Policy } from '../../types.js';
import { semanticCachePopulate } from '../semantic-cache-populate/semantic-cache-populate.js';
import { semanticCacheLookupSpec } from '../../../config/apim-kinds.js';
import { semanticCacheLookup } from './semantic-cache-lookup.js';
import { deleteKeysAt } from '../../../store/caches/redis.js';

const REDIS_URL = process.env.REDIS_URL;
const postgres = DATABASE_BACKENDS.find((b) => b.name === 'postgres')!;
const counters = new MemoryCounterStore();

/** 0.88 similar under the simulator's embeddings; the unrelated prompt is ~0.02. */
const PROMPT = 'What is the capital of France?';
const PARAPHRASE = 'what is the capital city of France?';
const UNRELATED = 'How do I bake sourdough bread?';

let emb: EmbeddingsStub;
before(async () => {
  emb = await startEmbeddingsStub();
});
after(() => emb?.close());

interface Pair {
  lookup: Policy;
  populate: Policy;
  caches: CacheResources;
  name: string;
}

function pair(caches: CacheResources, spec: Record<string, unknown> = {}): Pair {
  const name = unique('sc');
  const deps = { ...testDeps(counters), caches } as never;
  const lookup = semanticCacheLookup(name, { embeddings: { url: emb.url, model: 'e', timeout: '300ms' }, similaritySearch: { threshold: 0.85 }, ...spec }, deps);
  return { lookup, populate: semanticCachePopulate(`${name}-populate`, {}, deps), caches, name };
}

const chat = (content: string, r: FakeRequest = {}) => fakeContext({ ...r, body: { messages: [{ role: 'user', content }], ...r.body } });

async function ask(p: Pair, content: string, r: FakeRequest = {}, state: ApimState = tenant('app-1')) {
  const ctx = chat(content, r);
  await admit(p.lookup, ctx, state);
  return ctx;
}

/** A miss for `content`, answered with `answer` and stored by the populate policy. */
async function prime(p: Pair, content: string, answer: string, r: FakeRequest = {}, state: ApimState = tenant('app-1')) {
  const ctx = await ask(p, content, r, state);
  assert.equal(ctx.directResponse, undefined, 'a miss first');
  assert.equal(ctx.responseHeaders['x-cache'], 'MISS');
  await respondJson(p.populate, ctx, state, chatAnswer(answer));
  await stored(p, content, r, state);
}

/** The populate policy writes without holding the answer back, so a shared store shows the entry a moment later. */
async function stored(p: Pair, content: string, r: FakeRequest, state: ApimState): Promise<void> {
  for (const deadline = Date.now() + 3000; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 10))) {
    if ((await ask(p, content, r, state)).directResponse) return;
  }
  assert.fail(`'${content}' was never stored`);
}

/** A shared store shows what the populate policy wrote a moment later. */
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (const deadline = Date.now() + 3000; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 10))) if (await check()) return;
  assert.fail(`never: ${what}`);
}

const contentOf = (ctx: { directResponse?: { body: string | Buffer } }) => JSON.parse(String(ctx.directResponse!.body)).choices[0].message.content;

describe('config', () => {
  const caches = new CacheResources();
  const deps = { ...testDeps(counters), caches } as never;
  test('embeddings are required; bad thresholds and URLs are refused', () => {
    assert.throws(() => semanticCacheLookup('s', {}, deps), /embeddings/);
    assert.throws(() => semanticCacheLookup('s', { embeddings: { url: 'ftp://x', model: 'e' } }, deps), /url/);
    assert.throws(() => semanticCacheLookup('s', { embeddings: { url: 'http://x', model: 'e' }, similaritySearch: { threshold: 1.5 } }, deps), /threshold/);
    assert.throws(() => semanticCachePopulate('p', { ttlInSeconds: 0 }, deps), /ttlInSeconds/);
  });
  test('a spec already validated at config load (durations in ms) is accepted again', () => {
    const parsed = semanticCacheLookupSpec.parse({ embeddings: { url: 'http://x/v1/embeddings', model: 'e', timeout: '2s' } });
    assert.equal(parsed.embeddings.timeout, 2000);
    semanticCacheLookup('s', parsed, deps);
  });
  test('shared stores need the gateway\'s Redis or PostgreSQL', () => {
    // Each built as a flow of its own: in one flow, 's' asked for a memory store already.
    const flow = () => ({ ...testDeps(counters), caches }) as never;
    assert.throws(() => semanticCacheLookup('s', { embeddings: { url: 'http://x', model: 'e' }, store: 'redis' }, flow()), /needs the gateway's Redis/);
    assert.throws(() => semanticCacheLookup('s', { embeddings: { url: 'http://x', model: 'e' }, store: 'postgres' }, flow()), /PostgreSQL/);
  });
});

const BACKENDS: { name: string; store: string; skip?: string; open(): Promise<{ caches: CacheResources; dispose(): Promise<void> }> }[] = [
  { name: 'memory', store: 'memory', open: async () => ({ caches: new CacheResources(), dispose: async () => {} }) },
  {
    name: 'redis',
    store: 'redis',
    skip: REDIS_URL ? undefined : 'REDIS_URL not set',
    async open() {
      const redisKeyPrefix = `tollgate:test:${randomBase62(12)}:`;
      const caches = new CacheResources({ redisUrl: REDIS_URL, redisKeyPrefix });
      await caches.ready();
      return {
        caches,
        async dispose() {
          await caches.close();
          await deleteKeysAt(REDIS_URL!, redisKeyPrefix);
        },
      };
    },
  },
  {
    name: 'postgres',
    store: 'postgres',
    skip: postgres.skip,
    async open() {
      const target: TestDatabase = await postgres.create();
      const db: Database = await target.open({ listen: false });
      const caches = new CacheResources({ postgres: db.boundedKysely });
      return {
        caches,
        async dispose() {
          await caches.close();
          await db.close();
          await target.dispose();
        },
      };
    },
  },
];

for (const backend of BACKENDS) {
  describe(`on ${backend.name}`, { skip: backend.skip }, () => {
    let handle: { caches: CacheResources; dispose(): Promise<void> };
    before(async () => {
      handle = await backend.open();
    });
    after(() => handle?.dispose());
    const make = (spec: Record<string, unknown> = {}) => pair(handle.caches, { store: backend.store, ...spec });

    test('a paraphrase hits, with the similarity; an unrelated prompt misses', async () => {
      const p = make();
      await prime(p, PROMPT, 'Paris.');
      const hit = await ask(p, PARAPHRASE);
      assert.equal(hit.cacheHit, true);
      assert.equal(contentOf(hit), 'Paris.');
      assert.equal(hit.directResponse!.headers['x-cache'], 'HIT');
      const similarity = Number(hit.directResponse!.headers['x-semantic-similarity']);
      assert.ok(similarity >= 0.85 && similarity < 1, `similarity ${similarity}`);
      const miss = await ask(p, UNRELATED);
      assert.equal(miss.directResponse, undefined);
      assert.equal(miss.responseHeaders['x-cache'], 'MISS');
    });

    test('never across apps, products (scope product) or models', async () => {
      const perApp = make();
      await prime(perApp, PROMPT, 'Paris.', {}, tenant('app-1'));
      assert.equal((await ask(perApp, PROMPT, {}, tenant('app-2'))).directResponse, undefined, 'another app');
      assert.equal((await ask(perApp, PROMPT, { model: 'other-model' }, tenant('app-1'))).directResponse, undefined, 'another model');
      const perProduct = make({ scope: 'product' });
      await prime(perProduct, PROMPT, 'Paris.', {}, tenant('app-1', 'gold'));
      assert.ok((await ask(perProduct, PARAPHRASE, {}, tenant('app-2', 'gold'))).directResponse, 'same product');
      assert.equal((await ask(perProduct, PROMPT, {}, tenant('app-1', 'silver'))).directResponse, undefined, 'another product');
    });

    test('never across embeddings models: a shared index holds the vectors of gateways on another model', async () => {
      const cacheResource = unique('shared');
      await prime(make({ cacheResource }), PROMPT, 'Paris.');
      // The stub embeds alike under every model name, as two models of one size give vectors of one length.
      const switched = make({ cacheResource, embeddings: { url: emb.url, model: 'e-next', timeout: '300ms' } });
      // Before: a hit at similarity 1 on Redis and PostgreSQL, the other model's vectors compared as this one's.
      assert.equal((await ask(switched, PROMPT)).directResponse, undefined);
    });

    test('a prompt answered again (asked with no-cache) replaces its entry: repeats push no other prompt out', async () => {
      const p = make({ maxEntriesPerScope: 2 });
      await prime(p, UNRELATED, 'Bake it.');
      await prime(p, PROMPT, 'Paris.');
      for (const n of [1, 2, 3]) {
        const ctx = await ask(p, PROMPT, { headers: { 'cache-control': 'no-cache' } });
        await respondJson(p.populate, ctx, tenant('app-1'), chatAnswer(`Paris, ${n}.`));
        // The new answer is the one served (before, on PostgreSQL, the first copy stayed the answer).
        await until(async () => contentOf(await ask(p, PROMPT)) === `Paris, ${n}.`, `answer ${n} served`);
      }
      // Before: a copy per repeat on Redis and PostgreSQL, the cap of 2 dropping the other prompt's answer.
      assert.equal(contentOf(await ask(p, UNRELATED)), 'Bake it.');
    });
  });
}

describe('rules', () => {
  const caches = new CacheResources();

  test('another system prompt is another context, unless matchContext is off', async () => {
    const p = pair(caches);
    const sys = (content: string) => ({ body: { messages: [{ role: 'system', content }, { role: 'user', content: PROMPT }] } });
    const ctx = fakeContext(sys('Answer in French.'));
    await admit(p.lookup, ctx, tenant('app-1'));
    await respondJson(p.populate, ctx, tenant('app-1'), chatAnswer('Paris.'));
    const other = fakeContext(sys('Answer in one word.'));
    await admit(p.lookup, other, tenant('app-1'));
    assert.equal(other.directResponse, undefined);
    const loose = pair(caches, { matchContext: false });
    const first = fakeContext(sys('Answer in French.'));
    await admit(loose.lookup, first, tenant('app-1'));
    await respondJson(loose.populate, first, tenant('app-1'), chatAnswer('Paris.'));
    const second = fakeContext(sys('Answer in one word.'));
    await admit(loose.lookup, second, tenant('app-1'));
    assert.ok(second.directResponse);
  });

  test('the same question about another image is another prompt, even with matchContext off; about the same image, a hit', async () => {
    for (const spec of [{}, { matchContext: false }]) {
      const p = pair(caches, spec);
      const about = (url: string) => ({
        body: { messages: [{ role: 'user', content: [{ type: 'text', text: PROMPT }, { type: 'image_url', image_url: { url } }] }] },
      });
      const ctx = fakeContext(about('https://img.example/passport.png'));
      await admit(p.lookup, ctx, tenant('app-1'));
      await respondJson(p.populate, ctx, tenant('app-1'), chatAnswer('A passport of John Smith.'));
      // Before: a hit at similarity 1 (only the text is embedded), the passport's answer served for the cat.
      const other = fakeContext(about('https://img.example/cat.png'));
      await admit(p.lookup, other, tenant('app-1'));
      assert.equal(other.directResponse, undefined, JSON.stringify(spec));
      const same = fakeContext(about('https://img.example/passport.png'));
      await admit(p.lookup, same, tenant('app-1'));
      assert.equal(contentOf(same), 'A passport of John Smith.', JSON.stringify(spec));
    }
  });

  test('an answer of another shape is no hit: another operation, token cap, stop or logprobs', async () => {
    const p = pair(caches);
    await prime(p, PROMPT, 'Paris.', { body: { max_tokens: 1 } });
    const others: [string, FakeRequest][] = [
      ['completions', { operation: 'completions', body: { messages: undefined, prompt: PROMPT, max_tokens: 1 } }],
      ['a larger cap', { body: { max_tokens: 500 } }],
      ['logprobs', { body: { max_tokens: 1, logprobs: true, top_logprobs: 2 } }],
      ['a stop sequence', { body: { max_tokens: 1, stop: ['\n'] } }],
      ['four choices', { body: { max_tokens: 1, n: 4 } }],
    ];
    for (const [what, r] of others) assert.equal((await ask(p, PROMPT, r)).directResponse, undefined, what);
    assert.equal(contentOf(await ask(p, PARAPHRASE, { body: { max_tokens: 1 } })), 'Paris.', 'the same shape still hits');
  });

  test('a streamed request gets the answer replayed as SSE', async () => {
    const p = pair(caches);
    await prime(p, PROMPT, 'Paris, streamed.');
    const ctx = await ask(p, PARAPHRASE, { body: { stream: true } });
    assert.equal(ctx.directResponse!.headers['content-type'], 'text/event-stream');
    assert.equal(streamedText(ssePayloads(ctx.directResponse!.body)), 'Paris, streamed.');
  });

  test('a streamed miss asks the model server for usage, so the answer kept has it (dropped for a client that did not ask)', async () => {
    const p = pair(caches);
    const ctx = await ask(p, PROMPT, { body: { stream: true } });
    assert.equal(ctx.directResponse, undefined);
    assert.equal(ctx.body!.stream_options?.include_usage, true);
    assert.equal(ctx.stripStreamUsage, true);
  });

  test('embedding failures and timeouts are counted misses, and nothing is stored', async () => {
    const p = pair(caches);
    await prime(p, PROMPT, 'Paris.');
    for (const mode of ['fail', 'hang'] as const) {
      emb.mode = mode;
      const ctx = await ask(p, PROMPT);
      assert.equal(ctx.directResponse, undefined, mode);
      assert.equal(ctx.responseHeaders['x-cache'], 'MISS');
      assert.equal(p.populate.respond!(ctx, tenant('app-1'), 200), undefined);
    }
    emb.mode = 'ok';
    assert.equal(caches.stats(p.name).embeddingFailures, 2);
    assert.ok((await ask(p, PROMPT)).directResponse, 'recovers');
  });

  test('a request with Cache-Control: no-cache is counted as bypassed only, as ResponseCache counts it', async () => {
    const p = pair(caches);
    const ctx = await ask(p, PROMPT, { headers: { 'cache-control': 'no-cache' } });
    assert.equal(ctx.responseHeaders['x-cache'], 'MISS');
    const { lookups, misses, bypassed } = caches.stats(p.name);
    // Before: misses 1 as well, so misses could exceed lookups.
    assert.deepEqual({ lookups, misses, bypassed }, { lookups: 0, misses: 0, bypassed: 1 });
  });

  test('without a tenant to scope by, or with Cache-Control: no-store, nothing is embedded', async () => {
    const p = pair(caches);
    const before = emb.calls;
    await ask(p, PROMPT, {}, {});
    await ask(p, PROMPT, { headers: { 'cache-control': 'no-store' } });
    assert.equal(emb.calls, before);
    assert.equal(caches.stats(p.name).bypassed, 2);
  });
});
