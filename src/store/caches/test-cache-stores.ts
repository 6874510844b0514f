// Answer-cache backends for the shared cache test suite: memory always, Redis when REDIS_URL is set.
import { randomBase62 } from '../keys.js';
import { deleteKeys } from '../counters/test-counter-stores.js';
import type { CacheStore } from './cache-store.js';
import { MemoryCacheStore } from './memory.js';
import { RedisCacheStore, openCacheRedis, redisReady } from './redis.js';
import { silentLogger } from '../../lib/logger.js';

export interface TestCacheStore {
  store: CacheStore;
  /** Closes the store and deletes every key it wrote. */
  dispose(): Promise<void>;
}

export interface CacheBackend {
  name: 'memory' | 'redis';
  skip?: string;
  create(opts?: { maxValueBytes?: number }): Promise<TestCacheStore>;
}

const REDIS_URL = process.env.REDIS_URL;

export const CACHE_BACKENDS: CacheBackend[] = [
  {
    name: 'memory',
    async create(opts = {}) {
      const store = new MemoryCacheStore({ maxBytes: opts.maxValueBytes });
      return { store, dispose: () => store.close() };
    },
  },
  {
    name: 'redis',
    skip: REDIS_URL ? undefined : 'REDIS_URL not set',
    async create(opts = {}) {
      const keyPrefix = `tollgate:test:${randomBase62(12)}:`;
      const client = openCacheRedis(REDIS_URL!, silentLogger);
      await redisReady(client);
      const store = new RedisCacheStore({ client, keyPrefix, maxValueBytes: opts.maxValueBytes, commandTimeoutMs: 1000 });
      return {
        store,
        async dispose() {
          client.disconnect();
          await deleteKeys(REDIS_URL!, keyPrefix);
        },
      };
    },
  },
];
