// ResponseCache: key normalization, MISS then HIT, stream replay and stream population, tenant scopes, TTL,
// determinism, client Cache-Control, store outages — on every answer-cache backend.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ModelConfig, PoolConfig } from '../../../config/runtime-config.js';
import { MemoryCounterStore } from '../../../store/counters/memory.js';
import { randomBase62 } from '../../../store/keys.js';
import { fakeContext, testDeps, unique, type FakeRequest } from '../../testing.js';
import { CacheResources } from '../../caching/cache-resources.js';
import { admit, chatAnswer, chatChunks, respondJson, respondStream, ssePayloads, streamedText, tenant } from '../../caching/testing.js';
import type { ApimState, Policy } from '../../types.js';
import { responseCache } from './response-cache.js';
import { deleteKeysAt } from '../../../store/caches/redis.js';

const REDIS_URL = process.env.REDIS_URL;
const counters = new MemoryCounterStore();
/** One random prefix per run: keys from an earlier run must never answer this one's lookups. */
const PREFIX = `tollgate:test:${randomBase62(12)}:`;
const opened: CacheResources[] = [];
after(async () => {
  await Promise.all(opened.map((r) => r.close()));
  if (REDIS_URL) await deleteKeysAt(REDIS_URL, PREFIX);
});

function resources(opts: ConstructorParameters<typeof CacheResources>[0] = {}): CacheResources {
  const r = new CacheResources({ redisKeyPrefix: PREFIX, ...opts });
  opened.push(r);
  return r;
}

function make(spec: Record<string, unknown> = {}, caches = resources()): Policy {
  return responseCache(unique('rc'), spec, { ...testDeps(counters), caches } as never);
}

/** A deterministic chat request (temperature 0). */
function request(r: FakeRequest = {}) {
  return fakeContext({ ...r, body: { temperature: 0, ...r.body } });
}

async function lookup(policy: Policy, r: FakeRequest = {}, state: ApimState = tenant('app-1')) {
  const ctx = request(r);
  await admit(policy, ctx, state);
  return ctx;
}

/** One miss answered with `content`, stored. */
async function prime(policy: Policy, content: string, r: FakeRequest = {}, state: ApimState = tenant('app-1')) {
  const ctx = await lookup(policy, r, state);
  assert.equal(ctx.directResponse, undefined, 'a miss first');
  assert.equal(ctx.responseHeaders['x-cache'], 'MISS');
  await respondJson(policy, ctx, state, chatAnswer(content));
}

describe('config', () => {
  test('bad fields are refused', () => {
    assert.throws(() => make({ scope: 'tenant' }), /scope/);
    assert.throws(() => make({ expirySettings: { timeoutInSeconds: 0 } }), /timeoutInSeconds/);
    assert.throws(() => make({ ttl: 5 }), /Unrecognized key/);
  });
  test('store: redis needs the gateway\'s Redis', () => {
    assert.throws(() => make({ store: 'redis' }), /needs the gateway's Redis/);
  });
});

const BACKENDS = [
  { name: 'memory', spec: {}, caches: () => resources() },
  { name: 'redis', spec: { store: 'redis' }, caches: () => resources({ redisUrl: REDIS_URL }), skip: REDIS_URL ? undefined : 'REDIS_URL not set' },
];

for (const backend of BACKENDS) {
  describe(`on ${backend.name}`, { skip: backend.skip }, () => {
    let caches: CacheResources;
    before(async () => {
      caches = backend.caches();
      await caches.ready();
    });
    const policy = (spec: Record<string, unknown> = {}) => make({ ...backend.spec, ...spec }, caches);

    test('MISS, then HIT with the stored answer and no model server', async () => {
      const p = policy();
      await prime(p, 'Paris');
      const ctx = await lookup(p);
      assert.equal(ctx.cacheHit, true);
      assert.equal(ctx.directResponse!.status, 200);
      assert.equal(ctx.directResponse!.headers['x-cache'], 'HIT');
      assert.equal(JSON.parse(String(ctx.directResponse!.body)).choices[0].message.content, 'Paris');
    });

    test('the key ignores field order and stream, and counts every generation parameter', async () => {
      const p = policy();
      const messages = [{ role: 'user', content: 'Capital of France?' }];
      await prime(p, 'Paris', { body: { messages, max_tokens: 10, top_p: 1 } });
      assert.ok((await lookup(p, { body: { top_p: 1, max_tokens: 10, messages } })).directResponse, 'same request, other key order');
      assert.ok((await lookup(p, { body: { messages, max_tokens: 10, top_p: 1, user: 'bob', stream_options: null } })).directResponse, 'user is not keyed');
      for (const change of [{ max_tokens: 11 }, { top_p: 0.9 }, { stop: ['\n'] }, { seed: 1 }, { n: 2 }, { tools: [{ type: 'function', function: { name: 'f' } }] }, { response_format: { type: 'json_object' } }]) {
        const ctx = await lookup(p, { body: { messages, max_tokens: 10, top_p: 1, ...change } });
        assert.equal(ctx.directResponse, undefined, `${JSON.stringify(change)} changes the key`);
      }
      assert.equal((await lookup(p, { body: { messages: [{ role: 'user', content: 'Capital of Spain?' }], max_tokens: 10, top_p: 1 } })).directResponse, undefined);
      assert.equal((await lookup(p, { model: 'other', body: { messages, max_tokens: 10, top_p: 1 } })).directResponse, undefined, 'another model');
    });

    test('the target model is part of the key', async () => {
      const p = policy();
      const first = request();
      first.targetModel = 'llama-a';
      await admit(p, first, tenant('app-1'));
      await respondJson(p, first, tenant('app-1'), chatAnswer('from a'));
      const other = request();
      other.targetModel = 'llama-b';
      await admit(p, other, tenant('app-1'));
      assert.equal(other.directResponse, undefined);
    });

    test('a streamed request gets the cached answer replayed as SSE', async () => {
      const p = policy();
      await prime(p, 'Streamed Paris');
      const ctx = await lookup(p, { body: { stream: true } });
      assert.equal(ctx.directResponse!.headers['content-type'], 'text/event-stream');
      const events = ssePayloads(ctx.directResponse!.body);
      assert.equal(events.at(-1), '[DONE]');
      assert.equal(streamedText(events), 'Streamed Paris');
      assert.equal(JSON.parse(events[0]).object, 'chat.completion.chunk');
      assert.ok(!events.some((e) => e !== '[DONE]' && JSON.parse(e).usage), 'no usage chunk unless the client asked');
      const withUsage = await lookup(p, { body: { stream: true, stream_options: { include_usage: true } } });
      const last = JSON.parse(ssePayloads(withUsage.directResponse!.body).at(-2)!);
      assert.deepEqual(last.choices, []);
      assert.equal(last.usage.total_tokens, 8);
    });

    test('stream_options: {} gets the usage chunk from a hit where the pool\'s engine (vLLM) would send it, not elsewhere', async () => {
      const p = policy();
      const onPool = (engine: PoolConfig['engine'], r: FakeRequest) => {
        const ctx = request(r);
        ctx.modelConfig = { name: 'llama', pool: { name: 'pool', endpoints: [], engine } } as unknown as ModelConfig;
        return ctx;
      };
      const first = onPool('vllm', {});
      await admit(p, first, tenant('app-1'));
      await respondJson(p, first, tenant('app-1'), chatAnswer('Usage please'));
      const usageOf = async (engine: PoolConfig['engine']) => {
        const ctx = onPool(engine, { body: { stream: true, stream_options: {} } });
        await admit(p, ctx, tenant('app-1'));
        assert.equal(ctx.cacheHit, true);
        return ssePayloads(ctx.directResponse!.body).some((e) => e !== '[DONE]' && JSON.parse(e).usage);
      };
      // Before: no usage chunk, where vLLM itself (include_usage defaults to true there) sends one.
      assert.equal(await usageOf('vllm'), true);
      assert.equal(await usageOf('sglang'), false, "SGLang's include_usage defaults to false, as OpenAI's");
    });

    test('a completed stream is stored once it ends and answers a non-streamed request', async () => {
      const p = policy();
      const ctx = await lookup(p, { body: { stream: true } });
      const events = chatChunks(['Hel', 'lo']);
      assert.deepEqual(respondStream(p, ctx, tenant('app-1'), events), events, 'events pass unchanged');
      const hit = await lookup(p);
      const answer = JSON.parse(String(hit.directResponse!.body));
      assert.equal(answer.object, 'chat.completion');
      assert.equal(answer.choices[0].message.content, 'Hello');
      assert.equal(answer.choices[0].finish_reason, 'stop');
    });

    test('a stream to be stored asks the model server for usage (dropped for a client that did not ask), so hits have it', async () => {
      const p = policy();
      const ctx = await lookup(p, { body: { stream: true } });
      assert.equal(ctx.body!.stream_options?.include_usage, true, 'asked upstream');
      assert.equal(ctx.stripStreamUsage, true, 'and not shown to this client');
      assert.equal(ctx.bodyChanged, true);
      const own = await lookup(p, { body: { stream: true, stream_options: { include_usage: true } }, model: 'other' });
      assert.equal(own.stripStreamUsage, undefined, 'a client that asked keeps its usage chunk');
    });

    test('abandoned streams, error events and non-2xx answers are not stored', async () => {
      const p = policy();
      respondStream(p, await lookup(p, { body: { stream: true } }), tenant('app-1'), chatChunks(['x']), { complete: false });
      assert.equal((await lookup(p)).directResponse, undefined, 'abandoned');
      respondStream(p, await lookup(p, { body: { stream: true } }), tenant('app-1'), [chatChunks(['x'])[0], '{"error":{"message":"boom"}}']);
      assert.equal((await lookup(p)).directResponse, undefined, 'error event');
      await respondJson(p, await lookup(p), tenant('app-1'), { error: { message: 'overloaded' } }, 503);
      assert.equal((await lookup(p)).directResponse, undefined, '503');
      // Before: stored, and replayed as application/json.
      await respondJson(p, await lookup(p), tenant('app-1'), chatAnswer('JSON, but said to be HTML'), 200, 'text/html');
      assert.equal((await lookup(p)).directResponse, undefined, 'a 2xx answer that is not application/json');
      await respondJson(p, await lookup(p), tenant('app-1'), { error: { message: 'the model is loading' } });
      assert.equal((await lookup(p)).directResponse, undefined, 'an error sent with a 200');
    });

    test('a 200 whose body is not a JSON object is not stored', async () => {
      const p = policy();
      // Before: `{` first was enough, and the broken answer was replayed to the whole tenant for the TTL.
      for (const body of ['{"oops', '{"id": "x", "usage": {"prompt_tokens": 5, oops', '{"id": "x"} trailing', '[{"id": "x"}]']) {
        await respondJson(p, await lookup(p), tenant('app-1'), body);
        assert.equal((await lookup(p)).directResponse, undefined, body);
      }
      await prime(p, 'whole');
      assert.ok((await lookup(p)).directResponse, 'a whole answer still is');
    });

    test('scope app: two apps never share; product and global share as configured', async () => {
      const perApp = policy();
      await prime(perApp, 'for app-1', {}, tenant('app-1'));
      assert.equal((await lookup(perApp, {}, tenant('app-2'))).directResponse, undefined);
      const perProduct = policy({ scope: 'product' });
      await prime(perProduct, 'gold answer', {}, tenant('app-1', 'gold'));
      assert.ok((await lookup(perProduct, {}, tenant('app-2', 'gold'))).directResponse);
      assert.equal((await lookup(perProduct, {}, tenant('app-3', 'silver'))).directResponse, undefined);
      const global = policy({ scope: 'global' });
      await prime(global, 'everyone', {}, {});
      assert.ok((await lookup(global, {}, tenant('app-9', 'bronze'))).directResponse);
    });

    test('without the tenant its scope names, nothing is cached', async () => {
      const p = policy();
      const ctx = await lookup(p, {}, {});
      assert.equal(ctx.responseHeaders['x-cache'], undefined);
      assert.equal(p.respond!(ctx, {}, 200), undefined);
    });
  });
}

describe('rules', () => {
  test('sampling requests are not cached unless cacheNonDeterministic', async () => {
    const p = make();
    const sampling = fakeContext({ body: { temperature: 0.7 } });
    await admit(p, sampling, tenant('app-1'));
    assert.equal(p.respond!(sampling, tenant('app-1'), 200), undefined);
    const unset = fakeContext();
    await admit(p, unset, tenant('app-1'));
    assert.equal(unset.responseHeaders['x-cache'], undefined, 'no temperature means the default, which samples');
    const seeded = fakeContext({ body: { temperature: 0.7, seed: 7 } });
    await admit(p, seeded, tenant('app-1'));
    assert.equal(seeded.responseHeaders['x-cache'], 'MISS', 'a seed makes sampling repeatable');
    const anyway = make({ cacheNonDeterministic: true });
    await prime(anyway, 'sampled', { body: { temperature: 0.7 } });
    assert.ok((await lookup(anyway, { body: { temperature: 0.7 } })).directResponse);
  });

  test('entries expire after expirySettings.timeoutInSeconds', async () => {
    let t = 1_000_000;
    const p = make({ expirySettings: { timeoutInSeconds: 10 } }, resources({ now: () => t }));
    await prime(p, 'fresh');
    t += 9_999;
    assert.ok((await lookup(p)).directResponse);
    t += 1;
    assert.equal((await lookup(p)).directResponse, undefined);
  });

  test('Cache-Control: no-cache skips the lookup but stores; no-store does neither', async () => {
    const p = make();
    await prime(p, 'old');
    const refresh = await lookup(p, { headers: { 'cache-control': 'no-cache' } });
    assert.equal(refresh.directResponse, undefined);
    await respondJson(p, refresh, tenant('app-1'), chatAnswer('new'));
    assert.equal(JSON.parse(String((await lookup(p)).directResponse!.body)).choices[0].message.content, 'new');
    const secret = await lookup(p, { headers: { 'cache-control': 'no-store' }, body: { messages: [{ role: 'user', content: 'private' }] } });
    assert.equal(p.respond!(secret, tenant('app-1'), 200), undefined);
  });

  test('answers over maxEntryBytes are not stored', async () => {
    const p = make({ maxEntryBytes: 100 });
    await prime(p, 'x'.repeat(200));
    assert.equal((await lookup(p)).directResponse, undefined);
  });

  test('a store outage is a miss, counted, never a refusal', async () => {
    const caches = resources({ redisUrl: 'redis://127.0.0.1:1' });
    const name = unique('rc');
    const p = responseCache(name, { store: 'redis' }, { ...testDeps(counters), caches } as never);
    const ctx = await lookup(p);
    assert.equal(ctx.directResponse, undefined);
    assert.equal(ctx.responseHeaders['x-cache'], 'MISS');
    assert.equal(caches.stats(name).storeErrors, 1);
  });

  test('a Responses API answer (which says "error": null) is stored and replayed', async () => {
    const p = make();
    const ask = () => fakeContext({ url: '/v1/responses', operation: 'responses', body: { input: 'hi', temperature: 0, store: false, messages: undefined } });
    const first = ask();
    await admit(p, first, tenant('app-1'));
    assert.equal(first.responseHeaders['x-cache'], 'MISS');
    const answer = { id: 'resp_1', object: 'response', status: 'completed', error: null, output: [{ type: 'message', content: [{ type: 'output_text', text: 'hello' }] }] };
    await respondJson(p, first, tenant('app-1'), answer);
    const again = ask();
    await admit(p, again, tenant('app-1'));
    // Before: every repeat was a MISS, the answer taken for an error.
    assert.equal(again.directResponse?.headers['x-cache'], 'HIT');
    assert.deepEqual(JSON.parse(String(again.directResponse!.body)).output, answer.output);
  });

  test('a Responses API creation the server stores (store absent or true) is bypassed, never looked up or stored', async () => {
    const caches = resources();
    const name = unique('rc');
    const p = responseCache(name, {}, { ...testDeps(counters), caches } as never);
    const answer = { id: 'resp_1', object: 'response', status: 'completed', error: null, output: [] };
    const ask = (store?: boolean) => fakeContext({ url: '/v1/responses', operation: 'responses', body: { input: 'hi', temperature: 0, store, messages: undefined } });
    const unstored = ask(false);
    await admit(p, unstored, tenant('app-1'));
    await respondJson(p, unstored, tenant('app-1'), { ...answer, store: false });
    for (const store of [undefined, true]) {
      const stored = ask(store);
      await admit(p, stored, tenant('app-1'));
      // Before: the store:false answer above was the HIT, its id never stored on any server.
      assert.equal(stored.directResponse, undefined, `store: ${store}`);
      assert.equal(stored.responseHeaders['x-cache'], undefined);
      assert.equal(p.respond!(stored, tenant('app-1'), 200), undefined, 'its answer is not kept either');
    }
    assert.equal(caches.stats(name).bypassed, 2);
    assert.equal(caches.stats(name).stored, 1);
    // A policy after the lookup that dropped `store: false` made the answer a stored response's: not kept.
    const changed = ask(false);
    await admit(p, changed, tenant('app-2'));
    changed.body!.store = true;
    assert.equal(p.respond!(changed, tenant('app-2'), 200), undefined);
    assert.equal(caches.stats(name).changedAfterLookup, 1);
  });

  test('embeddings are cached; a streamed responses-API request is not', async () => {
    const p = make();
    const emb = fakeContext({ url: '/v1/embeddings', operation: 'embeddings', body: { input: 'hello', messages: undefined } });
    await admit(p, emb, tenant('app-1'));
    assert.equal(emb.responseHeaders['x-cache'], 'MISS');
    const streamed = fakeContext({ url: '/v1/responses', operation: 'responses', body: { input: 'hi', stream: true, temperature: 0, store: false } });
    await admit(p, streamed, tenant('app-1'));
    assert.equal(streamed.responseHeaders['x-cache'], undefined);
  });
});
