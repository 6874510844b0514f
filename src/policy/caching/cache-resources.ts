// The caches' storage, owned by the gateway rather than by one compiled policy flow: the engine is rebuilt on every
// configuration or store change, and a cache that emptied each time would be no cache. Stores are found by name and
// options, so a reloaded policy gets the same store back.
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { silentLogger, type Logger } from '../../lib/logger.js';
import type { CacheStore } from '../../store/caches/cache-store.js';
import { MemoryCacheStore } from '../../store/caches/memory.js';
import { RedisCacheStore, closeRedis, openCacheRedis, redisReady } from '../../store/caches/redis.js';
import { MemoryVectorIndex } from '../../store/vectors/memory.js';
import { PostgresVectorIndex } from '../../store/vectors/postgres.js';
import { RedisVectorIndex } from '../../store/vectors/redis.js';
import type { VectorIndex } from '../../store/vectors/vector-index.js';
import type { PolicyDeps } from '../types.js';
import { CacheStats } from './cache-stats.js';

export type AnswerBackend = 'memory' | 'redis';
export type VectorBackend = 'memory' | 'redis' | 'postgres';

export interface CacheResourcesOptions {
  /** The gateway's `--redis`; `store: redis` needs it. */
  redisUrl?: string;
  /** Default `tollgate:`; caches add `cache:NAME:` or `semantic:NAME:`. */
  redisKeyPrefix?: string;
  /** The gateway's database when it is PostgreSQL; `store: postgres` needs it. */
  postgres?: Kysely<any>;
  logger?: Logger;
  /** Epoch milliseconds; injected by tests. */
  now?: () => number;
}

/** What cache policies need beyond PolicyDeps; the gateway passes one CacheResources for its whole life. */
export type CacheDeps = PolicyDeps & { caches?: CacheResources };

/** Refused at configuration load: the policy asks for a backend this gateway was not started with. */
export class CacheBackendUnavailableError extends Error {}

export class CacheResources {
  readonly #opts: CacheResourcesOptions;
  readonly #stores = new Map<string, { signature: string; store: CacheStore | VectorIndex }>();
  readonly #stats = new Map<string, CacheStats>();
  #redis: Redis | undefined;

  constructor(opts: CacheResourcesOptions = {}) {
    this.#opts = opts;
    // Connected up front, so the first requests after start need not miss while it connects.
    if (opts.redisUrl) this.#redis = openCacheRedis(opts.redisUrl, opts.logger ?? silentLogger);
  }

  /** Resolves once Redis (when configured) is connected, or after a second: a cache may start cold. */
  ready(): Promise<void> {
    return this.#redis ? redisReady(this.#redis) : Promise.resolve();
  }

  /** @throws CacheBackendUnavailableError for `redis` without the gateway's Redis. */
  answerStore(name: string, backend: AnswerBackend, opts: { maxBytes: number; maxEntryBytes: number }): CacheStore {
    return this.#get(`answers:${name}`, `${backend}:${opts.maxBytes}:${opts.maxEntryBytes}`, () =>
      backend === 'redis'
        ? new RedisCacheStore({ client: this.#redisClient(backend), keyPrefix: `${this.#prefix}cache:${name}:`, maxValueBytes: opts.maxEntryBytes })
        : new MemoryCacheStore({ maxBytes: opts.maxBytes, now: this.#opts.now }),
    ) as CacheStore;
  }

  /** @throws CacheBackendUnavailableError for `redis` or `postgres` when the gateway has neither. */
  vectorIndex(name: string, backend: VectorBackend, opts: { maxEntriesPerScope: number }): VectorIndex {
    return this.#get(`vectors:${name}`, `${backend}:${opts.maxEntriesPerScope}`, () => {
      const common = { maxEntriesPerScope: opts.maxEntriesPerScope, now: this.#opts.now };
      if (backend === 'redis') return new RedisVectorIndex({ client: this.#redisClient(backend), keyPrefix: `${this.#prefix}semantic:${name}:`, ...common });
      if (backend === 'postgres') {
        if (!this.#opts.postgres) throw new CacheBackendUnavailableError('store: postgres needs the gateway to run on PostgreSQL (--db postgres://...)');
        return new PostgresVectorIndex({ db: this.#opts.postgres, ...common });
      }
      return new MemoryVectorIndex(common);
    }) as VectorIndex;
  }

  /** The counters of the cache policy `name` (one object for the gateway's life). */
  stats(name: string): CacheStats {
    let s = this.#stats.get(name);
    if (!s) this.#stats.set(name, (s = new CacheStats()));
    return s;
  }

  /** Every cache policy's counters, by name (for metrics). */
  allStats(): ReadonlyMap<string, CacheStats> {
    return this.#stats;
  }

  async close(): Promise<void> {
    const stores = [...this.#stores.values()].map((s) => s.store.close());
    this.#stores.clear();
    await Promise.allSettled(stores);
    if (this.#redis) await closeRedis(this.#redis);
    this.#redis = undefined;
  }

  get #prefix(): string {
    return this.#opts.redisKeyPrefix ?? 'tollgate:';
  }

  #get(id: string, signature: string, create: () => CacheStore | VectorIndex): CacheStore | VectorIndex {
    const held = this.#stores.get(id);
    if (held?.signature === signature) return held.store;
    const store = create();
    // Changed options: a new store; requests still holding the old one finish with it.
    if (held) void held.store.close();
    this.#stores.set(id, { signature, store });
    return store;
  }

  #redisClient(backend: string): Redis {
    if (!this.#redis) throw new CacheBackendUnavailableError(`store: ${backend} needs the gateway's Redis (--redis redis://...)`);
    return this.#redis;
  }
}

let processWide: CacheResources | undefined;

/**
 * The gateway's CacheResources when it passes one (PolicyDeps.caches); otherwise one in-memory CacheResources for the
 * process, so caches still outlive engine rebuilds (memory backends only).
 */
export function cacheResourcesOf(deps: CacheDeps): CacheResources {
  return deps.caches ?? (processWide ??= new CacheResources());
}
