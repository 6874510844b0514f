// Counter store backends for the shared counter test suite: memory always, Redis when REDIS_URL is set.
import { after, before, describe } from 'node:test';
import { Redis } from 'ioredis';
import { randomBase62 } from '../keys.js';
import type { CounterStore } from './counter-store.js';
import { MemoryCounterStore } from './memory.js';
import { RedisCounterStore } from './redis.js';
import { deleteKeysUnder } from '../caches/redis.js';

export interface TestCounterStore {
  store: CounterStore;
  /** Another replica's store on the same counters: a second Redis connection; in memory, the same store. */
  replica(): Promise<CounterStore>;
  /** Closes the stores and deletes every key they wrote. */
  dispose(): Promise<void>;
}

export interface CounterBackend {
  name: 'memory' | 'redis';
  skip?: string;
  create(): Promise<TestCounterStore>;
}

const REDIS_URL = process.env.REDIS_URL;

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
    async create() {
      const keyPrefix = `tollgate:test:${randomBase62(12)}:`;
      const open = async () => {
        const store = new RedisCounterStore({ url: REDIS_URL, keyPrefix });
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
          await deleteKeys(REDIS_URL!, keyPrefix);
        },
      };
    },
  },
];

/**
 * One suite run over every counter backend (`on memory`, `on redis`): `counters()` is the backend's fresh store,
 * created before the suite's tests and disposed of (its keys deleted) after them; `replica()` another replica's.
 */
export function describeOnCounterBackends(suite: (counters: () => CounterStore, replica: () => Promise<CounterStore>) => void): void {
  for (const backend of COUNTER_BACKENDS) {
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

/** Deletes every key under `prefix` (what a test wrote). */
export async function deleteKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url);
  try {
    await deleteKeysUnder(redis, prefix);
  } finally {
    redis.disconnect();
  }
}
