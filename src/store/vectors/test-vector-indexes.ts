// Semantic-index backends for the shared test suite: memory always, Redis when REDIS_URL is set (and a Redis Cluster
// of the test's own where redis-server is installed too), PostgreSQL when DATABASE_URL is set (each run in its own
// key prefix or schema).
import { randomBase62 } from '../keys.js';
import { REDIS_DEPLOYMENTS_SKIP, onRedisDeployment, startRedisCluster } from '../test-redis-servers.js';
import { deleteKeysAt, openCacheRedis, redisReady } from '../caches/redis.js';
import { DATABASE_BACKENDS } from '../test-databases.js';
import { silentLogger } from '../../lib/logger.js';
import type { VectorIndex } from './vector-index.js';
import { MemoryVectorIndex } from './memory.js';
import { RedisVectorIndex } from './redis.js';
import { PostgresVectorIndex } from './postgres.js';

export interface TestVectorIndex {
  index: VectorIndex;
  dispose(): Promise<void>;
}

export interface VectorBackend {
  name: 'memory' | 'redis' | 'redis cluster' | 'postgres';
  skip?: string;
  create(opts: { maxEntriesPerScope?: number; now?: () => number }): Promise<TestVectorIndex>;
}

const REDIS_URL = process.env.REDIS_URL;
const postgres = DATABASE_BACKENDS.find((b) => b.name === 'postgres')!;

export const VECTOR_BACKENDS: VectorBackend[] = [
  {
    name: 'memory',
    async create(opts) {
      const index = new MemoryVectorIndex(opts);
      return { index, dispose: () => index.close() };
    },
  },
  {
    name: 'redis',
    skip: REDIS_URL ? undefined : 'REDIS_URL not set',
    create: (opts) => redisIndex(REDIS_URL!, opts),
  },
  {
    name: 'redis cluster',
    skip: REDIS_DEPLOYMENTS_SKIP,
    create: (opts) => onRedisDeployment(startRedisCluster, (url) => redisIndex(url, opts)),
  },
  {
    name: 'postgres',
    skip: postgres.skip,
    async create(opts) {
      const target = await postgres.create();
      const db = await target.open({ listen: false });
      const index = new PostgresVectorIndex({ db: db.boundedKysely, commandTimeoutMs: 1000, ...opts });
      return {
        index,
        async dispose() {
          await db.close();
          await target.dispose();
        },
      };
    },
  },
];

/** A semantic index on the Redis at `url`, in a key prefix of its own. */
async function redisIndex(url: string, opts: { maxEntriesPerScope?: number; now?: () => number }): Promise<TestVectorIndex> {
  const keyPrefix = `tollgate:test:${randomBase62(12)}:`;
  const client = openCacheRedis(url, silentLogger);
  await redisReady(client);
  const index = new RedisVectorIndex({ client, keyPrefix, commandTimeoutMs: 1000, ...opts });
  return {
    index,
    async dispose() {
      client.disconnect();
      await deleteKeysAt(url, keyPrefix);
    },
  };
}
