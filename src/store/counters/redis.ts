// The shared CounterStore for many replicas: Redis, one atomic Lua script per operation (on one server, a turn's
// operations in one call: redis-batch.ts), failing fast when Redis is away.
import { createHash } from 'node:crypto';
import { loadIoredis } from '../ioredis.js';
import { silentLogger, type Logger } from '../../lib/logger.js';
import { TimeoutError } from '../../lib/with-timeout.js';
import type { Redis } from 'ioredis';
import { closeRedis, openRedisClient, redisErrorMessage, sendWithin, type RedisClient } from '../redis-client.js';
import { dropStalledConnection } from '../redis-stall.js';
import { DEFAULT_KEY_PREFIX, parseRedisTarget } from '../redis-target.js';
import {
  checkBurst,
  checkCount,
  checkDelta,
  checkId,
  checkInterval,
  checkNow,
  checkWindow,
  rollingSlotMs,
} from './arguments.js';
import type { CounterStore, HoldId, ReservationHold, ReserveResult, SmoothedResult, WindowResult } from './counter-store.js';
import { CounterStoreUnavailableError } from './errors.js';
import { CounterBatch } from './redis-batch.js';
import { SCRIPTS, type ScriptName } from './redis-scripts.js';

export interface RedisCounterStoreOptions {
  /** Default `redis://127.0.0.1:6379`; any form of redis-target.ts. */
  url?: string;
  /** Prepended to every key (default `tollgate:counters:`), so deployments and test runs can share a server. */
  keyPrefix?: string;
  /** Default 1000 ms. */
  connectTimeoutMs?: number;
  /** Longest wait for one operation before CounterStoreUnavailableError (default COMMAND_BACKSTOP_MS). */
  commandTimeoutMs?: number;
  logger?: Logger;
}

/** The scripts, registered with defineCommand (EVALSHA, falling back to EVAL once per connection) for a cluster. */
type ScriptCalls = Record<ScriptName, (...keysAndArgs: (string | number)[]) => Promise<unknown>>;

/**
 * Only a backstop: the caller, CounterGuard, waits the APIMExtensionPolicy's `timeout` (10 s at most) and abandons
 * what is pending when it passes, so the store must not give up first (a fixed 500 ms here made every slower reply an
 * outage, whatever the policy said). Above the longest timeout rather than following the policy's: a reload may change
 * it while requests of the engine before, with the old timeout, still call this one store.
 */
export const COMMAND_BACKSTOP_MS = 15_000;

/** Server replies that mean "not now" rather than "bad script" (a server at its maxclients says so with a plain ERR). */
const UNAVAILABLE_REPLY = /^(LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY|OOM|MISCONF|NOREPLICAS)\b|^ERR max number of clients reached/;

/**
 * A counter's keys in a cluster: one script reads and writes two of them (a window and its holds, a log and its
 * total), which must then sit in one slot, so the counter's key is their hash tag. A key with a `}` of its own would
 * end the tag early or leave it empty (then each key is hashed whole, to two slots): its digest is the tag instead.
 */
function clusterKey(kind: string, key: string): string {
  const tag = key.includes('}') ? createHash('sha256').update(key).digest('base64url') : key;
  return `${kind}:{${tag}}`;
}

/**
 * Commands are never queued while disconnected (enableOfflineQueue off, one retry): during an outage each call fails
 * with CounterStoreUnavailableError, at once when disconnected, and the client keeps reconnecting; a call on a stalled
 * connection waits until its caller gives up (abandonPending) or the command timeout passes.
 * @example const counters = new RedisCounterStore({ url: 'redis://redis:6379' }); await counters.ready();
 */
export class RedisCounterStore implements CounterStore {
  readonly #redis: RedisClient;
  /** One server (or Sentinel's primary): a turn's operations in one call. A cluster: a call per operation. */
  readonly #batch: CounterBatch | undefined;
  readonly #connectTimeoutMs: number;
  readonly #commandTimeoutMs: number;
  readonly #logger: Logger;
  /** The key of one counter's data of `kind` (see #key). */
  readonly #key: (kind: string, key: string) => string;
  /** How many times callers gave up on what was pending (abandonPending): a call started before is not sent again. */
  #abandoned = 0;

  constructor(opts: RedisCounterStoreOptions = {}) {
    const logger = opts.logger ?? silentLogger;
    this.#logger = logger;
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 1000;
    this.#commandTimeoutMs = opts.commandTimeoutMs ?? COMMAND_BACKSTOP_MS;
    const redis = openRedisClient(parseRedisTarget(opts.url ?? 'redis://127.0.0.1:6379'), {
      keyPrefix: opts.keyPrefix ?? `${DEFAULT_KEY_PREFIX}counters:`,
      connectTimeoutMs: this.#connectTimeoutMs,
      // Without a listener ioredis prints every failed reconnect; callers learn of outages from the rejected calls.
      onError: (err) => logger.debug({ err }, 'redis counter store connection error'),
    });
    this.#key = redis.isCluster ? clusterKey : (kind, key) => `${kind}:${key}`;
    if (redis.isCluster) for (const [name, script] of Object.entries(SCRIPTS)) redis.defineCommand(name, { numberOfKeys: script.keys, lua: script.lua });
    this.#batch = redis.isCluster ? undefined : new CounterBatch(redis as Redis, this.#commandTimeoutMs);
    this.#redis = redis;
  }

  /** Resolves once connected; rejects with CounterStoreUnavailableError on the first failure or after the connect timeout. */
  ready(): Promise<void> {
    const redis = this.#redis;
    if (redis.status === 'ready') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        redis.off('ready', onReady);
        redis.off('error', onError);
        if (err) reject(new CounterStoreUnavailableError(`Redis is unavailable: ${redisErrorMessage(err)}`, { cause: err }));
        else resolve();
      };
      const onReady = () => done();
      const onError = (err: Error) => done(err);
      const timer = setTimeout(() => done(new Error(`not connected after ${this.#connectTimeoutMs} ms`)), this.#connectTimeoutMs);
      redis.once('ready', onReady);
      redis.once('error', onError);
    });
  }

  async consume(key: string, amount: number, limit: number, windowMs: number, nowMs = Date.now()): Promise<WindowResult> {
    checkCount('amount', amount);
    checkCount('limit', limit);
    checkWindow(windowMs);
    checkNow(nowMs);
    const [allowed, count, endMs] = await this.#run<[number, number, number]>('tgConsumeFixed', [this.#key('fw', key)], [nowMs, amount, limit, windowMs]);
    return { allowed: allowed === 1, count, remaining: Math.max(0, limit - count), resetAtMs: endMs };
  }

  async reserve(key: string, amount: number, limit: number, windowMs: number, hold: ReservationHold, nowMs = Date.now()): Promise<ReserveResult> {
    checkCount('amount', amount);
    checkCount('limit', limit);
    const id = checkId(hold.id);
    checkNow(hold.untilMs);
    checkWindow(windowMs);
    checkNow(nowMs);
    const [allowed, count, endMs, held] = await this.#run<[number, number, number, number]>('tgReserveFixed', [this.#key('fw', key), this.#key('fwh', key)], [nowMs, amount, limit, windowMs, id, hold.untilMs]);
    return { allowed: allowed === 1, count, remaining: Math.max(0, limit - count), resetAtMs: endMs, held };
  }

  async settle(key: string, holdId: HoldId, delta: number): Promise<boolean> {
    const id = checkId(holdId);
    checkDelta(delta);
    return (await this.#run<number>('tgSettleFixed', [this.#key('fw', key), this.#key('fwh', key)], [id, delta])) === 1;
  }

  async adjust(key: string, delta: number, windowMs: number, nowMs = Date.now()): Promise<number> {
    checkDelta(delta);
    checkWindow(windowMs);
    checkNow(nowMs);
    return this.#run<number>('tgAdjustFixed', [this.#key('fw', key)], [nowMs, delta, windowMs]);
  }

  async get(key: string, nowMs = Date.now()): Promise<number> {
    checkNow(nowMs);
    // A script like the others, so it is ordered after the operations asked for before it in the same turn.
    return this.#run<number>('tgGetFixed', [this.#key('fw', key)], [nowMs]);
  }

  async consumeRolling(key: string, amount: number, limit: number, windowMs: number, nowMs = Date.now()): Promise<WindowResult> {
    checkCount('amount', amount);
    checkCount('limit', limit);
    checkWindow(windowMs);
    checkNow(nowMs);
    const [allowed, count, resetAtMs] = await this.#run<[number, number, number]>('tgConsumeRolling', [this.#key('rwl', key), this.#key('rwt', key)], [nowMs, amount, limit, windowMs, rollingSlotMs(windowMs)]);
    return { allowed: allowed === 1, count, remaining: Math.max(0, limit - count), resetAtMs };
  }

  async consumeSmoothed(key: string, intervalMs: number, burst: number, nowMs = Date.now(), weight = 1): Promise<SmoothedResult> {
    checkInterval(intervalMs);
    checkBurst('burst', burst);
    checkBurst('weight', weight);
    checkNow(nowMs);
    const [allowed, retryAfterMs] = await this.#run<[number, number]>('tgConsumeSmoothed', [this.#key('sa', key)], [nowMs, intervalMs, burst, weight]);
    return { allowed: allowed === 1, retryAfterMs };
  }

  close(): Promise<void> {
    // What this turn asked for leaves before QUIT, which Redis answers after it.
    this.#batch?.flushNow();
    return closeRedis(this.#redis);
  }

  /**
   * A connection that lets a command time out is stalled (a partition, a blocked server): every command written
   * after it would wait there too and, if the connection came back, run late, counting requests already refused
   * or let through uncounted, and piling up in memory meanwhile. Drop it (ioredis reconnects with its retry
   * strategy), so what was never delivered is never applied.
   */
  abandonPending(): void {
    this.#abandoned++;
    this.#dropStalledConnection();
  }

  #dropStalledConnection(): void {
    if (dropStalledConnection(this.#redis)) this.#logger.debug('a redis counter command timed out; dropping the connection');
  }

  /** `script` on `keys` with `args`, batched with the turn's other operations when the store can. */
  #run<T>(script: ScriptName, keys: string[], args: (string | number)[]): Promise<T> {
    const batch = this.#batch;
    if (!batch) return this.#call(() => (this.#redis as unknown as ScriptCalls)[script](...keys, ...args) as Promise<T>);
    const abandoned = this.#abandoned;
    return batch.run<T>(script, keys, args, () => this.#abandoned === abandoned).catch((err: unknown) => this.#failed(err));
  }

  /**
   * Arguments are checked before this, so a RangeError is never mistaken for an outage. The deadline is withTimeout's,
   * not ioredis's commandTimeout, whose plain timer fires before a reply that arrived during an event-loop stall is read.
   */
  async #call<T>(command: () => Promise<T>): Promise<T> {
    const abandoned = this.#abandoned;
    try {
      return await sendWithin(this.#redis, command, this.#commandTimeoutMs, 'a Redis counter command', () => this.#abandoned === abandoned);
    } catch (err) {
      return this.#failed(err);
    }
  }

  #failed(err: unknown): never {
    if (err instanceof TimeoutError) this.#dropStalledConnection();
    // A ReplyError is Redis rejecting the command itself (a bug here), except for the transient states above.
    if (err instanceof loadIoredis().ReplyError && !UNAVAILABLE_REPLY.test((err as Error).message)) throw err;
    throw new CounterStoreUnavailableError(`Redis is unavailable: ${redisErrorMessage(err as Error)}`, { cause: err });
  }
}
