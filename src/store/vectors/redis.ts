// A shared semantic index on Redis: one hash per scope (field = entry key, value = binary entry with its expiry),
// scanned in the gateway. Every lookup reads the scope's whole hash, so keep scopes to a few thousand entries.
import type { RedisClient } from '../redis-client.js';
import { CACHE_COMMAND_TIMEOUT_MS } from '../caches/cache-store.js';
import { redisCall } from '../caches/redis.js';
import type { VectorIndex, VectorMatch } from './vector-index.js';
import { encodeEntry, entryExpiresAt, entrySimilarity, entryValue } from './vector-index.js';

/** Sets an entry (replacing its key's) and keeps the hash alive as long as its longest-lived entry; returns the entry count. */
const ADD = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return redis.call('HLEN', KEYS[1])`;

interface AddCommand {
  tgVectorAdd(key: string, id: string, entry: Buffer, ttlMs: number): Promise<number>;
}

export interface RedisVectorIndexOptions {
  /** A shared client (not closed here); caches use one without an offline queue, see openCacheRedis. */
  client: RedisClient;
  /** Default `tollgate:semantic:`. */
  keyPrefix?: string;
  maxEntriesPerScope?: number;
  /** Longest wait for one command (default 250 ms): a lookup that takes longer is a miss. */
  commandTimeoutMs?: number;
  now?: () => number;
}

export class RedisVectorIndex implements VectorIndex {
  readonly #redis: RedisClient & AddCommand;
  readonly #prefix: string;
  readonly #maxEntries: number;
  readonly #now: () => number;
  readonly #timeoutMs: number;

  constructor(opts: RedisVectorIndexOptions) {
    opts.client.defineCommand('tgVectorAdd', { numberOfKeys: 1, lua: ADD });
    this.#redis = opts.client as RedisClient & AddCommand;
    this.#prefix = opts.keyPrefix ?? 'tollgate:semantic:';
    this.#maxEntries = opts.maxEntriesPerScope ?? 2000;
    this.#now = opts.now ?? Date.now;
    this.#timeoutMs = opts.commandTimeoutMs ?? CACHE_COMMAND_TIMEOUT_MS;
  }

  async search(scope: string, vector: Float32Array, threshold: number): Promise<VectorMatch | undefined> {
    const key = this.#prefix + scope;
    const all = await redisCall(this.#redis, () => this.#redis.hgetallBuffer(key), this.#timeoutMs);
    const now = this.#now();
    let best: Buffer | undefined;
    let bestSim = threshold;
    const expired: string[] = [];
    for (const id in all) {
      const entry = all[id];
      if (entryExpiresAt(entry) <= now) {
        expired.push(id);
        continue;
      }
      const sim = entrySimilarity(entry, vector);
      if (sim >= bestSim) {
        bestSim = sim;
        best = entry;
      }
    }
    // Cleaning up is best effort: another replica may be doing the same.
    if (expired.length > 0) this.#redis.hdel(key, ...expired).catch(() => {});
    return best && { similarity: bestSim, value: entryValue(best) };
  }

  async add(scope: string, entryKey: string, vector: Float32Array, value: Buffer, ttlMs: number): Promise<void> {
    if (ttlMs <= 0) return;
    const key = this.#prefix + scope;
    const count = await redisCall(this.#redis, () => this.#redis.tgVectorAdd(key, entryKey, encodeEntry(vector, value, this.#now() + ttlMs), Math.ceil(ttlMs)), this.#timeoutMs);
    if (count > this.#maxEntries) await this.#trim(key);
  }

  async close(): Promise<void> {}

  /** Drops the expired entries, then the ones closest to expiry, down to the cap. */
  async #trim(key: string): Promise<void> {
    const all = await redisCall(this.#redis, () => this.#redis.hgetallBuffer(key), this.#timeoutMs);
    const byExpiry = Object.entries(all).sort((a, b) => entryExpiresAt(a[1]) - entryExpiresAt(b[1]));
    const now = this.#now();
    const excess = byExpiry.length - this.#maxEntries;
    const doomed = byExpiry.filter(([, e], i) => i < excess || entryExpiresAt(e) <= now).map(([id]) => id);
    if (doomed.length > 0) await redisCall(this.#redis, () => this.#redis.hdel(key, ...doomed), this.#timeoutMs);
  }

}
