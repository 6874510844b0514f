// The shared answer cache for many replicas: one Redis string per entry with its own expiry (SET PX), failing fast
// when Redis is away so a cache outage costs a miss, never a stuck request.
import type { Cluster, Redis } from 'ioredis';
import { loadIoredis } from '../ioredis.js';
import { silentLogger, type Logger } from '../../lib/logger.js';
import { TimeoutError } from '../../lib/with-timeout.js';
import { closeRedis, openRedisClient, redisErrorMessage, sendWithin, type RedisClient } from '../redis-client.js';
import { dropStalledConnection } from '../redis-stall.js';
import { parseRedisTarget } from '../redis-target.js';
import { CACHE_COMMAND_TIMEOUT_MS, CACHE_PURGE_TIMEOUT_MS, CacheStoreUnavailableError, type CacheStore } from './cache-store.js';

export interface RedisCacheStoreOptions {
  /** An open client to share (not closed by this store), or a URL to open one. */
  client?: RedisClient;
  url?: string;
  /** Prepended to every key (default `tollgate:cache:`). */
  keyPrefix?: string;
  /** Entries larger than this are not stored (default 1 MiB). */
  maxValueBytes?: number;
  /** Longest wait for one command (default 250 ms): a slow cache is worse than none. */
  commandTimeoutMs?: number;
  logger?: Logger;
}

/** @example const store = new RedisCacheStore({ url: 'redis://redis:6379', keyPrefix: 'tollgate:cache:rc:' }); */
export class RedisCacheStore implements CacheStore {
  readonly #redis: RedisClient;
  readonly #owned: boolean;
  readonly #prefix: string;
  readonly #maxValueBytes: number;
  readonly #timeoutMs: number;

  constructor(opts: RedisCacheStoreOptions) {
    this.#prefix = opts.keyPrefix ?? 'tollgate:cache:';
    this.#maxValueBytes = opts.maxValueBytes ?? 1024 * 1024;
    this.#owned = !opts.client;
    this.#timeoutMs = opts.commandTimeoutMs ?? CACHE_COMMAND_TIMEOUT_MS;
    this.#redis = opts.client ?? openCacheRedis(opts.url ?? 'redis://127.0.0.1:6379', opts.logger ?? silentLogger);
  }

  async get(key: string): Promise<Buffer | undefined> {
    const value = await redisCall(this.#redis, () => this.#redis.getBuffer(this.#prefix + key), this.#timeoutMs);
    return value ?? undefined;
  }

  async set(key: string, value: Buffer, ttlMs: number): Promise<void> {
    if (value.length > this.#maxValueBytes || ttlMs <= 0) return;
    await redisCall(this.#redis, () => this.#redis.set(this.#prefix + key, value, 'PX', Math.ceil(ttlMs)), this.#timeoutMs);
  }

  async close(): Promise<void> {
    if (this.#owned) await closeRedis(this.#redis);
  }

}

/** Server replies that mean "not now" rather than "bad command". */
const UNAVAILABLE_REPLY = /^(LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY|OOM|MISCONF)\b/;

/**
 * Runs a command of `redis` within `timeoutMs`; connection trouble, transient server states and the deadline become
 * CacheStoreUnavailableError. The deadline is withTimeout's, not ioredis's commandTimeout, whose plain timer fires
 * before a reply that arrived during an event-loop stall is read. Past it the connection is dropped: kept, a silent
 * one made every later lookup a miss at the deadline, its commands (answers being stored among them) queued in
 * memory, until the socket died, while Redis itself was fine.
 */
export async function redisCall<T>(redis: RedisClient, command: () => Promise<T>, timeoutMs = CACHE_COMMAND_TIMEOUT_MS): Promise<T> {
  try {
    return await sendWithin(redis, command, timeoutMs, 'a Redis cache command');
  } catch (err) {
    if (err instanceof TimeoutError) dropStalledConnection(redis);
    if (err instanceof loadIoredis().ReplyError && !UNAVAILABLE_REPLY.test((err as Error).message)) throw err;
    throw new CacheStoreUnavailableError(`Redis is unavailable: ${redisErrorMessage(err as Error)}`, { cause: err });
  }
}

/** A purge walks the whole keyspace (SCAN) in steps of this many keys, each step given CACHE_PURGE_TIMEOUT_MS. */
const PURGE_SCAN_COUNT = 1000;

/** `prefix` as a SCAN MATCH pattern: its glob characters taken literally, then anything. */
const globOf = (prefix: string): string => `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;

/**
 * Deletes every key starting with `prefix` (a cache resource's entries, whatever their namespace), a batch per SCAN
 * step with UNLINK (freed off Redis's main thread), on every primary of a cluster; resolves to how many were deleted.
 * @throws CacheStoreUnavailableError when Redis cannot answer.
 */
export async function deleteKeysUnder(client: RedisClient, prefix: string): Promise<number> {
  const match = globOf(prefix);
  let deleted = 0;
  const servers = await primariesOf(client);
  for (const redis of servers) {
    let cursor = '0';
    do {
      const [next, keys] = await redisCall(redis, () => redis.scan(cursor, 'MATCH', match, 'COUNT', PURGE_SCAN_COUNT), CACHE_PURGE_TIMEOUT_MS);
      if (keys.length > 0) deleted += await redisCall(redis, () => unlinkEach(redis, keys), CACHE_PURGE_TIMEOUT_MS);
      cursor = next;
    } while (cursor !== '0');
  }
  return deleted;
}

/**
 * The connections to every primary, each answering: of a cluster, the primaries its slot map names now. The client's
 * own list leaves out a node it has lost, whose keys a purge would then report gone while they stay; so a primary
 * without a connection, slots without a primary, or one that does not answer make the purge fail before it deletes.
 */
async function primariesOf(client: RedisClient): Promise<Redis[]> {
  if (!client.isCluster) return [client as Redis];
  const cluster = client as Cluster;
  // [first, last, primary, ...replicas], each node [host, port, id, ...].
  const slots = await redisCall(cluster, () => cluster.cluster('SLOTS'), CACHE_PURGE_TIMEOUT_MS);
  if (slots.reduce((n, [first, last]) => n + last - first + 1, 0) < 16384) throw new CacheStoreUnavailableError('Redis is unavailable: some slots have no primary');
  const addresses = [...new Set(slots.map(([, , primary]) => `${primary[0]}:${primary[1]}`))];
  const find = () => addresses.map((address) => cluster.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === address));
  let found = find();
  if (found.includes(undefined)) {
    // A node the client lost is taken back at its next look at the slot map, which commands to its slots would
    // bring on; a purge brings it on itself.
    await redisCall(cluster, () => new Promise<void>((resolve, reject) => cluster.refreshSlotsCache((err) => (err ? reject(err) : resolve()))), CACHE_PURGE_TIMEOUT_MS);
    found = find();
  }
  const missing = addresses.filter((_, i) => !found[i]);
  if (missing.length > 0) throw new CacheStoreUnavailableError(`Redis is unavailable: no connection to the primary at ${missing.join(', ')}`);
  const primaries = found as Redis[];
  await Promise.all(primaries.map((node) => redisCall(node, () => node.ping(), CACHE_PURGE_TIMEOUT_MS)));
  return primaries;
}

/** deleteKeysUnder on the Redis at `url` (any form `--redis` takes), through a connection of its own. */
export async function deleteKeysAt(url: string, prefix: string): Promise<number> {
  const client = openCacheRedis(url, silentLogger);
  try {
    await redisReady(client, 5000);
    return await deleteKeysUnder(client, prefix);
  } finally {
    await closeRedis(client);
  }
}

/** One UNLINK per key, in one round trip: a cluster node refuses one command over keys of several slots (CROSSSLOT). */
async function unlinkEach(redis: Redis, keys: string[]): Promise<number> {
  const replies = (await redis.pipeline(keys.map((key) => ['unlink', key])).exec()) ?? [];
  const failed = replies.find(([err]) => err);
  if (failed) throw failed[0];
  return replies.reduce((sum, [, n]) => sum + Number(n), 0);
}

/**
 * A client for caches: no offline queue and a short connect timeout, so every call during an outage fails at once
 * or within redisCall's deadline while the client keeps reconnecting in the background. What was pending on a
 * connection that went away is not sent again on the next: its callers have had their miss.
 */
export function openCacheRedis(url: string, logger: Logger): RedisClient {
  return openRedisClient(parseRedisTarget(url), {
    connectTimeoutMs: 1000,
    onError: (err) => logger.debug({ err }, 'redis cache connection error'),
  });
}

/** Resolves once connected (or after `timeoutMs`, whichever first), so the first lookups need not miss. */
export function redisReady(redis: RedisClient, timeoutMs = 1000): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      redis.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    redis.once('ready', done);
  });
}
