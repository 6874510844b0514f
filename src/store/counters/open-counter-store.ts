// Picks the counter store from the `--redis` flag: Redis when a URL is given, otherwise in-memory.
import type { CounterStore } from './counter-store.js';
import type { CounterStoreUnavailableError } from './errors.js';
import { MemoryCounterStore } from './memory.js';
import { RedisCounterStore, type RedisCounterStoreOptions } from './redis.js';

/**
 * The store, and why it cannot answer yet when Redis could not be reached at start: the caller decides whether to go
 * on without it (the client keeps reconnecting in the background) or to close it.
 * @example const { store, unreachable } = await openCounterStore(flags.redis, { logger });
 */
export async function openCounterStore(
  redisUrl: string | undefined,
  opts: Omit<RedisCounterStoreOptions, 'url'> = {},
): Promise<{ store: CounterStore; unreachable?: CounterStoreUnavailableError }> {
  if (redisUrl === undefined) return { store: new MemoryCounterStore() };
  const store = new RedisCounterStore({ ...opts, url: redisUrl });
  try {
    await store.ready();
    return { store };
  } catch (err) {
    return { store, unreachable: err as CounterStoreUnavailableError };
  }
}
