// Semantic-index backends for the shared test suite: memory always, Redis when REDIS_URL is set, PostgreSQL when
// DATABASE_URL is set (each run in its own key prefix or schema).
import { randomBase62 } from '../keys.js';
import { deleteKeys } from '../counters/test-counter-stores.js';
import { openCacheRedis, redisReady } from '../caches/redis.js';
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
  name: 'memory' | 'redis' | 'postgres';
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
    async create(opts) {
      const keyPrefix = `tollgate:test:${randomBase62(12)}:`;
      const client = openCacheRedis(REDIS_URL!, silentLogger);
      await redisReady(client);
      const index = new RedisVectorIndex({ client, keyPrefix, commandTimeoutMs: 1000, ...opts });
      return {
        index,
        async dispose() {
          client.disconnect();
          await deleteKeys(REDIS_URL!, keyPrefix);
        },
      };
    },
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
