// The caches' storage, owned by the gateway rather than by one compiled policy flow: the engine is rebuilt on every
// configuration or store change, and a cache that emptied each time would be no cache. Stores are found by resource
// and options, so a reloaded policy gets the same store back; one that no compiled policy holds any more is let go.
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

/** Refused at configuration load: two policies of one flow name the same cache resource with different options. */
export class CacheResourceConflictError extends Error {}

/** The policy asking for a store, and the PolicyDeps it was built with: the policies of one compiled flow share them. */
export interface CacheClaimant {
  policy: string;
  flow: PolicyDeps;
}

type Store = CacheStore | VectorIndex;

export class CacheResources {
  readonly #opts: CacheResourcesOptions;
  /**
   * By kind, resource and options; held weakly, as only compiled policies hold a store. Engines are also built only to
   * check a configuration, and never installed, so nothing here can tell when a policy stops being used: the garbage
   * collector can (a deleted or renamed policy's 45 MB kept for the process's life when held here).
   */
  readonly #stores = new Map<string, WeakRef<Store>>();
  readonly #collected = new FinalizationRegistry<string>((id) => {
    if (this.#stores.get(id)?.deref() === undefined) this.#stores.delete(id);
  });
  /** Per flow (its PolicyDeps), the first policy to name each resource and its options. */
  readonly #claims = new WeakMap<PolicyDeps, Map<string, { policy: string; options: string }>>();
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

  /**
   * ResponseCache's answers under `resource`.
   * @throws CacheBackendUnavailableError for `redis` without the gateway's Redis.
   * @throws CacheResourceConflictError when another policy of the flow named `resource` with other options.
   */
  answerStore(by: CacheClaimant, resource: string, backend: AnswerBackend, opts: { maxBytes: number; maxEntryBytes: number }): CacheStore {
    const options = `store ${backend}, maxBytes ${opts.maxBytes}, maxEntryBytes ${opts.maxEntryBytes}`;
    return this.#get(by, 'ResponseCache', resource, options, () =>
      backend === 'redis'
        ? new RedisCacheStore({ client: this.#redisClient(backend), keyPrefix: `${this.#prefix}cache:${resource}:`, maxValueBytes: opts.maxEntryBytes })
        : new MemoryCacheStore({ maxBytes: opts.maxBytes, now: this.#opts.now }),
    ) as CacheStore;
  }

  /**
   * SemanticCacheLookup's vectors under `resource`. The embeddings model is one of its options: vectors of two models
   * are not comparable (a Redis or PostgreSQL index is shared with other gateways, and the lookup's scope holds the model).
   * @throws CacheBackendUnavailableError for `redis` or `postgres` when the gateway has neither.
   * @throws CacheResourceConflictError when another policy of the flow named `resource` with other options.
   */
  vectorIndex(by: CacheClaimant, resource: string, backend: VectorBackend, opts: { maxEntriesPerScope: number; embeddingsModel: string }): VectorIndex {
    const options = `store ${backend}, maxEntriesPerScope ${opts.maxEntriesPerScope}, embeddings model ${opts.embeddingsModel}`;
    return this.#get(by, 'SemanticCacheLookup', resource, options, () => {
      const common = { maxEntriesPerScope: opts.maxEntriesPerScope, now: this.#opts.now };
      if (backend === 'redis') return new RedisVectorIndex({ client: this.#redisClient(backend), keyPrefix: `${this.#prefix}semantic:${resource}:`, ...common });
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
    const stores = [...this.#stores.values()].map((s) => s.deref()?.close());
    this.#stores.clear();
    await Promise.allSettled(stores);
    if (this.#redis) await closeRedis(this.#redis);
    this.#redis = undefined;
  }

  get #prefix(): string {
    return this.#opts.redisKeyPrefix ?? 'tollgate:';
  }

  /**
   * The store of `kind` for `resource` with these options. Changed options get a new store, while the policies (and
   * requests) still holding the old one finish with it, never emptied under them: an engine built only to check a
   * configuration closed the store of the one serving.
   */
  #get(by: CacheClaimant, kind: string, resource: string, options: string, create: () => Store): Store {
    this.#claim(by, kind, resource, options);
    const id = `${kind}\n${resource}\n${options}`;
    const held = this.#stores.get(id)?.deref();
    if (held) return held;
    const store = create();
    this.#stores.set(id, new WeakRef(store));
    this.#collected.register(store, id);
    return store;
  }

  /**
   * Policies sharing a resource share its entries, so within one flow they must agree on its options: one store cannot
   * have two budgets, and two stores under one name each emptied the other at every rebuild.
   */
  #claim(by: CacheClaimant, kind: string, resource: string, options: string): void {
    let claims = this.#claims.get(by.flow);
    if (!claims) this.#claims.set(by.flow, (claims = new Map()));
    const id = `${kind}\n${resource}`;
    const first = claims.get(id);
    if (!first) return void claims.set(id, { policy: by.policy, options });
    if (first.options === options) return;
    throw new CacheResourceConflictError(
      `cacheResource "${resource}" is also ${kind}/${first.policy}'s, with other options (there ${first.options}; here ${options}): policies sharing a cache resource must agree on them`,
    );
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
