// SemanticCachePopulate: stores only after a lookup's miss, only complete 2xx answers, for ttlInSeconds, into the
// named lookup's index.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryCounterStore } from '../../../store/counters/memory.js';
import { fakeContext, testDeps, unique } from '../../testing.js';
import { CacheResources } from '../../caching/cache-resources.js';
import { admit, chatAnswer, chatChunks, respondJson, respondStream, startEmbeddingsStub, tenant, type EmbeddingsStub } from '../../caching/testing.js';
import { semanticCacheLookup } from '../semantic-cache-lookup/semantic-cache-lookup.js';
import { semanticCachePopulate } from './semantic-cache-populate.js';

let emb: EmbeddingsStub;
before(async () => {
  emb = await startEmbeddingsStub();
});
after(() => emb?.close());

let t = 1_000_000;
const caches = new CacheResources({ now: () => t });
const deps = { ...testDeps(new MemoryCounterStore()), caches } as never;
const state = tenant('app-1');
const lookupOf = (name = unique('sc')) => semanticCacheLookup(name, { embeddings: { url: emb.url, model: 'e' } }, deps);
const chat = (stream = false) => fakeContext({ body: { messages: [{ role: 'user', content: 'Name a prime number' }], stream } });

describe('SemanticCachePopulate', () => {
  test('without a lookup before it, there is nothing to store', () => {
    const populate = semanticCachePopulate('p', {}, deps);
    assert.equal(populate.respond!(chat(), state, 200), undefined);
  });

  test('stores for ttlInSeconds', async () => {
    const lookup = lookupOf();
    const populate = semanticCachePopulate('p', { ttlInSeconds: 60 }, deps);
    const first = chat();
    await admit(lookup, first, state);
    await respondJson(populate, first, state, chatAnswer('7'));
    t += 59_999;
    const hit = chat();
    await admit(lookup, hit, state);
    assert.ok(hit.directResponse);
    t += 1;
    const expired = chat();
    await admit(lookup, expired, state);
    assert.equal(expired.directResponse, undefined);
  });

  test('lookupPolicy names whose misses it stores', async () => {
    const lookup = lookupOf('faq');
    const elsewhere = semanticCachePopulate('p', { lookupPolicy: 'another' }, deps);
    const ctx = chat();
    await admit(lookup, ctx, state);
    assert.equal(elsewhere.respond!(ctx, state, 200), undefined);
    assert.ok(semanticCachePopulate('p2', { lookupPolicy: 'faq' }, deps).respond!(ctx, state, 200));
  });

  test('non-2xx answers, a 200 that is not a JSON object and abandoned streams are not stored; a finished stream is', async () => {
    const lookup = lookupOf();
    const populate = semanticCachePopulate('p', {}, deps);
    const failed = chat();
    await admit(lookup, failed, state);
    await respondJson(populate, failed, state, { error: { message: 'overloaded' } }, 503);
    // Before: stored, since it starts with `{`.
    const broken = chat();
    await admit(lookup, broken, state);
    await respondJson(populate, broken, state, '{"oops');
    const abandoned = chat(true);
    await admit(lookup, abandoned, state);
    respondStream(populate, abandoned, state, chatChunks(['1', '3']), { complete: false });
    const check = chat();
    await admit(lookup, check, state);
    assert.equal(check.directResponse, undefined);
    const streamed = chat(true);
    await admit(lookup, streamed, state);
    respondStream(populate, streamed, state, chatChunks(['1', '3']));
    const hit = chat();
    await admit(lookup, hit, state);
    assert.equal(JSON.parse(String(hit.directResponse!.body)).choices[0].message.content, '13');
  });
});
