// CacheResources.purge: one cache resource emptied, under every configuration (namespace) it was used with, on every
// backend (memory, Redis, PostgreSQL), leaving other resources alone, including one whose name it starts.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryCounterStore } from '../../store/counters/memory.js';
import type { Database } from '../../store/database.js';
import { randomBase62 } from '../../store/keys.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../../store/test-databases.js';
import { responseCache } from '../policies/response-cache/response-cache.js';
import { semanticCacheLookup } from '../policies/semantic-cache-lookup/semantic-cache-lookup.js';
import { semanticCachePopulate } from '../policies/semantic-cache-populate/semantic-cache-populate.js';
import { fakeContext, testDeps } from '../testing.js';
import type { Policy } from '../types.js';
import type { AnswerShapedCache } from './answer-config.js';
import { CacheResources } from './cache-resources.js';
import { admit, chatAnswer, respondJson, startEmbeddingsStub, tenant, type EmbeddingsStub } from './testing.js';
import { deleteKeysAt } from '../../store/caches/redis.js';

const REDIS_URL = process.env.REDIS_URL;
const PREFIX = `tollgate:test:${randomBase62(12)}:`;
const postgres = DATABASE_BACKENDS.find((b) => b.name === 'postgres')!;
const counters = new MemoryCounterStore();
const state = tenant('app-1');
const configured = (namespace: string) => ({ namespace, productPart: () => '' });

let stub: EmbeddingsStub | undefined;
const cleanup: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
  if (REDIS_URL) await deleteKeysAt(REDIS_URL, PREFIX);
});

/** The cache under test: `ask` stores on a miss and tells whether it hit. */
interface Cache {
  ask(): Promise<boolean>;
}

function exact(caches: CacheResources, resource: string, store: string, namespace: string): Cache {
  const policy = responseCache(`rc-${randomBase62(6)}`, { cacheResource: resource, store }, { ...testDeps(counters), caches } as never) as AnswerShapedCache;
  policy.configureAnswers(configured(namespace));
  return {
    async ask() {
      const ctx = fakeContext({ body: { temperature: 0 } });
      await admit(policy, ctx, state);
      if (ctx.directResponse) return true;
      await respondJson(policy, ctx, state, chatAnswer('Paris'));
      return false;
    },
  };
}

async function semantic(caches: CacheResources, resource: string, store: string, namespace: string): Promise<Cache> {
  if (!stub) {
    const started = (stub = await startEmbeddingsStub());
    cleanup.push(() => started.close());
  }
  const url = stub.url;
  const name = `sc-${randomBase62(6)}`;
  const deps = { ...testDeps(counters), caches } as never;
  const lookup = semanticCacheLookup(name, { cacheResource: resource, store, embeddings: { url, model: 'e' } }, deps) as AnswerShapedCache;
  lookup.configureAnswers(configured(namespace));
  const populate: Policy = semanticCachePopulate(`${name}-populate`, { lookupPolicy: name }, deps);
  return {
    async ask() {
      const ctx = fakeContext();
      await admit(lookup, ctx, state);
      if (ctx.directResponse) return true;
      await respondJson(populate, ctx, state, chatAnswer('Paris'));
      return false;
    },
  };
}

const BACKENDS: { kind: string; store: string; skip?: string; make: typeof semantic }[] = [
  { kind: 'ResponseCache', store: 'memory', make: async (...a) => exact(...a) },
  { kind: 'ResponseCache', store: 'redis', skip: REDIS_URL ? undefined : 'REDIS_URL not set', make: async (...a) => exact(...a) },
  { kind: 'SemanticCacheLookup', store: 'memory', make: semantic },
  { kind: 'SemanticCacheLookup', store: 'redis', skip: REDIS_URL ? undefined : 'REDIS_URL not set', make: semantic },
  { kind: 'SemanticCacheLookup', store: 'postgres', skip: postgres.skip, make: semantic },
];

for (const b of BACKENDS) {
  describe(`purging a ${b.kind} resource on ${b.store}`, { skip: b.skip }, () => {
    test('empties the resource under every namespace, and nothing else', async () => {
      let db: Database | undefined;
      if (b.store === 'postgres') {
        const target: TestDatabase = await postgres.create();
        db = await target.open({ listen: false });
        cleanup.push(() => target.dispose(), () => db!.close());
      }
      const caches = new CacheResources({ redisUrl: b.store === 'redis' ? REDIS_URL : undefined, redisKeyPrefix: PREFIX, postgres: db?.boundedKysely });
      cleanup.push(() => caches.close());
      await caches.ready();
      // `faq` and `faq:v2`: a key prefix of one must not be the other's.
      const resource = `faq-${randomBase62(6)}`;
      const now = await b.make(caches, resource, b.store, 'now-ns');
      const before = await b.make(caches, resource, b.store, 'old-ns');
      const sibling = await b.make(caches, `${resource}:v2`, b.store, 'now-ns');
      for (const c of [now, before, sibling]) assert.equal(await c.ask(), false);
      for (const c of [now, before, sibling]) assert.equal(await c.ask(), true, 'stored');

      assert.equal(await caches.purge(resource), 2, 'one entry in each namespace');
      assert.equal(await now.ask(), false, 'purged');
      assert.equal(await before.ask(), false, "another configuration's entries too");
      assert.equal(await sibling.ask(), true, 'another resource is left alone');
      assert.equal(await caches.purge('no-such-resource'), undefined, 'no policy names it');
    });
  });
}
