// Picks the counter store from the `--redis` flag: Redis when a URL is given, otherwise in-memory.
import type { CounterStore } from './counter-store.js';
import { MemoryCounterStore } from './memory.js';
import { RedisCounterStore, type RedisCounterStoreOptions } from './redis.js';

/**
 * Resolves once the store can answer. @throws CounterStoreUnavailableError when Redis cannot be reached at start.
 * @example const counters = await openCounterStore(flags.redis, { logger });
 */
export async function openCounterStore(
  redisUrl: string | undefined,
  opts: Omit<RedisCounterStoreOptions, 'url'> = {},
): Promise<CounterStore> {
  if (redisUrl === undefined) return new MemoryCounterStore();
  const store = new RedisCounterStore({ ...opts, url: redisUrl });
  try {
    await store.ready();
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}
