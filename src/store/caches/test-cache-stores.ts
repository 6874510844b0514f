// Answer-cache backends for the shared cache test suite: memory always, Redis when REDIS_URL is set, and a Redis
// Cluster of the test's own where redis-server is installed too.
import { randomBase62 } from '../keys.js';
import { REDIS_DEPLOYMENTS_SKIP, onRedisDeployment, startRedisCluster } from '../test-redis-servers.js';
import type { CacheStore } from './cache-store.js';
import { MemoryCacheStore } from './memory.js';
import { RedisCacheStore, deleteKeysAt, deleteKeysUnder, openCacheRedis, redisReady } from './redis.js';
import { silentLogger } from '../../lib/logger.js';

export interface TestCacheStore {
  store: CacheStore;
  /** Deletes every entry (what purging the cache resource does); resolves to how many. */
  purge(): Promise<number>;
  /** Closes the store and deletes every key it wrote. */
  dispose(): Promise<void>;
}

export interface CacheBackend {
  name: 'memory' | 'redis' | 'redis cluster';
  skip?: string;
  create(opts?: { maxValueBytes?: number }): Promise<TestCacheStore>;
}

const REDIS_URL = process.env.REDIS_URL;

export const CACHE_BACKENDS: CacheBackend[] = [
  {
    name: 'memory',
    async create(opts = {}) {
      const store = new MemoryCacheStore({ maxBytes: opts.maxValueBytes });
      return { store, purge: () => Promise.resolve(store.clear()), dispose: () => store.close() };
    },
  },
  {
    name: 'redis',
    skip: REDIS_URL ? undefined : 'REDIS_URL not set',
    create: (opts = {}) => redisCache(REDIS_URL!, opts),
  },
  {
    name: 'redis cluster',
    skip: REDIS_DEPLOYMENTS_SKIP,
    create: (opts = {}) => onRedisDeployment(startRedisCluster, (url) => redisCache(url, opts)),
  },
];

/** An answer cache on the Redis at `url`, in a key prefix of its own. */
async function redisCache(url: string, opts: { maxValueBytes?: number }): Promise<TestCacheStore> {
  const keyPrefix = `tollgate:test:${randomBase62(12)}:`;
  const client = openCacheRedis(url, silentLogger);
  await redisReady(client);
  const store = new RedisCacheStore({ client, keyPrefix, maxValueBytes: opts.maxValueBytes, commandTimeoutMs: 1000 });
  return {
    store,
    purge: () => deleteKeysUnder(client, keyPrefix),
    async dispose() {
      client.disconnect();
      await deleteKeysAt(url, keyPrefix);
    },
  };
}
