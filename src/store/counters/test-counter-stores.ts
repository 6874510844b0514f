// Counter store backends for the shared counter test suite: memory always, Redis when REDIS_URL is set, and a Redis
// Cluster and a Sentinel-watched primary of the test's own where redis-server is installed too.
import { after, before, describe } from 'node:test';
import { randomBase62 } from '../keys.js';
import type { CounterStore } from './counter-store.js';
import { MemoryCounterStore } from './memory.js';
import { RedisCounterStore } from './redis.js';
import { deleteKeysAt } from '../caches/redis.js';
import { REDIS_DEPLOYMENTS_SKIP, onRedisDeployment, startRedisCluster, startRedisSentinel, type RedisDeployment } from '../test-redis-servers.js';

export interface TestCounterStore {
  store: CounterStore;
  /** Another replica's store on the same counters: a second Redis connection; in memory, the same store. */
  replica(): Promise<CounterStore>;
  /** Closes the stores and deletes every key they wrote (and stops a deployment started for them). */
  dispose(): Promise<void>;
}

export interface CounterBackend {
  name: 'memory' | 'redis' | 'redis cluster' | 'redis sentinel';
  skip?: string;
  /** Started for the suite (seconds): the store's own suite runs on it, the policies' suites do not. */
  deployment?: true;
  create(): Promise<TestCounterStore>;
}

const REDIS_URL = process.env.REDIS_URL;

/** Counters on the Redis at `url`, in a key prefix of their own. */
async function redisCounters(url: string): Promise<TestCounterStore> {
  const keyPrefix = `tollgate:test:${randomBase62(12)}:`;
  const open = async () => {
    const store = new RedisCounterStore({ url, keyPrefix });
    await store.ready();
    return store;
  };
  const stores = [await open()];
  return {
    store: stores[0],
    async replica() {
      stores.push(await open());
      return stores[stores.length - 1];
    },
    async dispose() {
      await Promise.all(stores.map((s) => s.close()));
      await deleteKeysAt(url, keyPrefix);
    },
  };
}

function deploymentBackend(name: 'redis cluster' | 'redis sentinel', start: () => Promise<RedisDeployment>): CounterBackend {
  return {
    name,
    skip: REDIS_DEPLOYMENTS_SKIP,
    deployment: true,
    create: () => onRedisDeployment(start, redisCounters),
  };
}

export const COUNTER_BACKENDS: CounterBackend[] = [
  {
    name: 'memory',
    async create() {
      const store = new MemoryCounterStore();
      return { store, replica: () => Promise.resolve(store), dispose: () => store.close() };
    },
  },
  {
    name: 'redis',
    skip: REDIS_URL ? undefined : 'REDIS_URL not set',
    create: () => redisCounters(REDIS_URL!),
  },
  deploymentBackend('redis cluster', startRedisCluster),
  deploymentBackend('redis sentinel', startRedisSentinel),
];

/**
 * One suite run over the counter backends on hand (`on memory`, `on redis`; the deployments run the store's own suite
 * only): `counters()` is the backend's fresh store,
 * created before the suite's tests and disposed of (its keys deleted) after them; `replica()` another replica's.
 */
export function describeOnCounterBackends(suite: (counters: () => CounterStore, replica: () => Promise<CounterStore>) => void): void {
  for (const backend of COUNTER_BACKENDS.filter((b) => !b.deployment)) {
    describe(`on ${backend.name}`, { skip: backend.skip }, () => {
      let handle: TestCounterStore | undefined;
      before(async () => {
        handle = await backend.create();
      });
      after(() => handle?.dispose());
      suite(
        () => handle!.store,
        () => handle!.replica(),
      );
    });
  }
}
