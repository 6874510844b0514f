// The caches' storage, owned by the gateway rather than by one compiled policy flow: the engine is rebuilt on every
// configuration or store change, and a cache that emptied each time would be no cache. Stores are found by resource,
// answer-shaping configuration (answer-config.ts) and options, so a reloaded policy gets the same store back; one that
// no compiled policy holds any more is let go. A resource can be purged on demand.
import type { Kysely } from 'kysely';
import { silentLogger, type Logger } from '../../lib/logger.js';
import type { CacheStore } from '../../store/caches/cache-store.js';
import { MemoryCacheStore } from '../../store/caches/memory.js';
import { closeRedis, type RedisClient } from '../../store/redis-client.js';
import { DEFAULT_KEY_PREFIX } from '../../store/redis-target.js';
import { RedisCacheStore, deleteKeysUnder, openCacheRedis, redisReady } from '../../store/caches/redis.js';
import { MemoryVectorIndex } from '../../store/vectors/memory.js';
import { PostgresVectorIndex, deleteScopesUnder } from '../../store/vectors/postgres.js';
import { RedisVectorIndex } from '../../store/vectors/redis.js';
import type { VectorIndex } from '../../store/vectors/vector-index.js';
import type { PolicyDeps } from '../types.js';
import { UNSHAPED } from './answer-config.js';
import { CacheStats } from './cache-stats.js';

export type AnswerBackend = 'memory' | 'redis';
export type VectorBackend = 'memory' | 'redis' | 'postgres';

export interface CacheResourcesOptions {
  /** The gateway's `--redis`; `store: redis` needs it. */
  redisUrl?: string;
  /** Default `tollgate:`; caches add `cache:NAME:` or `semantic:NAME:`. */
  redisKeyPrefix?: string;
  /**
   * The gateway's database when it is PostgreSQL, as its builder with a deadline on every statement
   * (Database.boundedKysely, see PostgresVectorIndexOptions.db); `store: postgres` needs it.
   */
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

/** A store as held: weakly, with what a purge of its resource needs. */
interface HeldStore {
  resource: string;
  ref: WeakRef<Store>;
  /** In Redis or PostgreSQL, the prefix of the resource's entries in every namespace; absent in memory. */
  shared?: SharedPrefix;
}

interface SharedPrefix {
  /** The backend and prefix: the stores of one resource's namespaces share it. */
  id: string;
  /** Deletes every entry under it; resolves to how many. */
  purge(): Promise<number>;
}

/** The entries under `prefix` in Redis, in every namespace of the resource. */
const redisShared = (client: RedisClient, prefix: string): SharedPrefix => ({ id: `redis ${prefix}`, purge: () => deleteKeysUnder(client, prefix) });

/** A resource name as a key part, percent-encoded: without a `:`, resource `a`'s prefix never starts `a:b`'s keys. */
const keyPart = (resource: string): string => encodeURIComponent(resource);

export class CacheResources {
  readonly #opts: CacheResourcesOptions;
  /**
   * By kind, resource, namespace and options; held weakly, as only compiled policies hold a store. Engines are also
   * built only to check a configuration, and never installed, so nothing here can tell when a policy stops being used:
   * the garbage collector can (a deleted or renamed policy's 45 MB kept for the process's life when held here).
   */
  readonly #stores = new Map<string, HeldStore>();
  readonly #collected = new FinalizationRegistry<string>((id) => {
    if (this.#stores.get(id)?.ref.deref() === undefined) this.#stores.delete(id);
  });
  /** Per flow (its PolicyDeps), the first policy to name each resource and its options. */
  readonly #claims = new WeakMap<PolicyDeps, Map<string, { policy: string; options: string }>>();
  /**
   * Per cache policy name, its counters, held weakly for the same reason as the stores: a deleted or renamed policy's
   * stayed in /metrics for the process's life (nine series per name an admin apply dropped).
   */
  readonly #stats = new Map<string, WeakRef<CacheStats>>();
  readonly #statsCollected = new FinalizationRegistry<string>((name) => {
    if (this.#stats.get(name)?.deref() === undefined) this.#stats.delete(name);
  });
  #redis: RedisClient | undefined;

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
   * ResponseCache's answers under `resource`, in `namespace` (AnswerConfig.namespace): the entries made under another
   * answer-shaping configuration are another namespace's, never seen here.
   * @throws CacheBackendUnavailableError for `redis` without the gateway's Redis.
   * @throws CacheResourceConflictError when another policy of the flow named `resource` with other options.
   */
  answerStore(by: CacheClaimant, resource: string, backend: AnswerBackend, opts: { maxBytes: number; maxEntryBytes: number }, namespace = UNSHAPED.namespace): CacheStore {
    const options = `store ${backend}, maxBytes ${opts.maxBytes}, maxEntryBytes ${opts.maxEntryBytes}`;
    const prefix = `${this.#prefix}cache:${keyPart(resource)}:`;
    return this.#get(by, 'ResponseCache', resource, options, namespace, () => {
      if (backend === 'memory') return { store: new MemoryCacheStore({ maxBytes: opts.maxBytes, now: this.#opts.now }) };
      const client = this.#redisClient(backend);
      return {
        store: new RedisCacheStore({ client, keyPrefix: `${prefix}${namespace}:`, maxValueBytes: opts.maxEntryBytes }),
        shared: redisShared(client, prefix),
      };
    }) as CacheStore;
  }

  /**
   * SemanticCacheLookup's vectors under `resource`, in `namespace` (as answerStore's). The embeddings model is one of
   * its options: vectors of two models are not comparable (a Redis or PostgreSQL index is shared with other gateways,
   * and the lookup's scope holds the model).
   * @throws CacheBackendUnavailableError for `redis` or `postgres` when the gateway has neither.
   * @throws CacheResourceConflictError when another policy of the flow named `resource` with other options.
   */
  vectorIndex(by: CacheClaimant, resource: string, backend: VectorBackend, opts: { maxEntriesPerScope: number; embeddingsModel: string }, namespace = UNSHAPED.namespace): VectorIndex {
    const options = `store ${backend}, maxEntriesPerScope ${opts.maxEntriesPerScope}, embeddings model ${opts.embeddingsModel}`;
    return this.#get(by, 'SemanticCacheLookup', resource, options, namespace, () => {
      const common = { maxEntriesPerScope: opts.maxEntriesPerScope, now: this.#opts.now };
      if (backend === 'redis') {
        const client = this.#redisClient(backend);
        const prefix = `${this.#prefix}semantic:${keyPart(resource)}:`;
        return { store: new RedisVectorIndex({ client, keyPrefix: `${prefix}${namespace}:`, ...common }), shared: redisShared(client, prefix) };
      }
      if (backend === 'postgres') {
        const db = this.#opts.postgres;
        if (!db) throw new CacheBackendUnavailableError('store: postgres needs the gateway to run on PostgreSQL (--db postgres://...)');
        // One table for every resource: the scope names the resource, so its rows can be purged alone.
        const prefix = `semantic:${keyPart(resource)}:`;
        return { store: new PostgresVectorIndex({ db, scopePrefix: `${prefix}${namespace}:`, ...common }), shared: { id: `postgres ${prefix}`, purge: () => deleteScopesUnder(db, prefix) } };
      }
      return { store: new MemoryVectorIndex(common) };
    }) as VectorIndex;
  }

  /**
   * The counters of the cache policy `name`: one object for as long as a compiled policy of that name holds it, so a
   * rebuilt engine counts on where the one it replaces left off.
   */
  stats(name: string): CacheStats {
    let s = this.#stats.get(name)?.deref();
    if (!s) {
      s = new CacheStats();
      this.#stats.set(name, new WeakRef(s));
      this.#statsCollected.register(s, name);
    }
    return s;
  }

  /** The counters of every cache policy some compiled policy still holds, by name (for metrics). */
  allStats(): ReadonlyMap<string, CacheStats> {
    const live = new Map<string, CacheStats>();
    for (const [name, ref] of this.#stats) {
      const s = ref.deref();
      if (s) live.set(name, s);
    }
    return live;
  }

  /**
   * Empties cache resource `resource` (what Apigee's InvalidateCache does), under every configuration it was used
   * with: this process's memory stores, and its keys or rows in Redis and PostgreSQL, which every replica shares.
   * @returns how many entries were removed, or undefined when no cache policy of this process names `resource`.
   * @throws CacheStoreUnavailableError when Redis or PostgreSQL cannot answer.
   */
  async purge(resource: string): Promise<number | undefined> {
    const held = [...this.#stores.values()].filter((h) => h.resource === resource);
    if (held.length === 0) return undefined;
    let removed = 0;
    const shared = new Map<string, SharedPrefix>();
    for (const h of held) {
      const store = h.ref.deref();
      if (store instanceof MemoryCacheStore || store instanceof MemoryVectorIndex) removed += store.clear();
      if (h.shared) shared.set(h.shared.id, h.shared);
    }
    for (const prefix of shared.values()) removed += await prefix.purge();
    return removed;
  }

  async close(): Promise<void> {
    const stores = [...this.#stores.values()].map((s) => s.ref.deref()?.close());
    this.#stores.clear();
    await Promise.allSettled(stores);
    if (this.#redis) await closeRedis(this.#redis);
    this.#redis = undefined;
  }

  get #prefix(): string {
    return this.#opts.redisKeyPrefix ?? DEFAULT_KEY_PREFIX;
  }

  /**
   * The store of `kind` for `resource` with these options. Changed options get a new store, while the policies (and
   * requests) still holding the old one finish with it, never emptied under them: an engine built only to check a
   * configuration closed the store of the one serving.
   */
  #get(by: CacheClaimant, kind: string, resource: string, options: string, namespace: string, create: () => { store: Store; shared?: SharedPrefix }): Store {
    this.#claim(by, kind, resource, options);
    const id = `${kind}\n${resource}\n${namespace}\n${options}`;
    const held = this.#stores.get(id)?.ref.deref();
    if (held) return held;
    const { store, shared } = create();
    this.#stores.set(id, { resource, ref: new WeakRef(store), ...(shared && { shared }) });
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

  #redisClient(backend: string): RedisClient {
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
