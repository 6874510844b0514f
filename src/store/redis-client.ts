// One way to open Redis for counters and caches, whatever `--redis` names (redis-target.ts): a server, a primary that
// Sentinel watches, or a cluster. The callers give up on a command themselves (their own deadlines), so every form is
// set to fail fast and, as far as ioredis allows (see clusterOptions), never to send a command again on its own: a
// retry the caller no longer waits for would count a request already refused or let through uncounted.
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { withTimeout } from '../lib/with-timeout.js';
import { loadIoredis } from './ioredis.js';
import { coalesceWrites } from './redis-coalesce.js';
import { guardHandshake } from './redis-handshake.js';
import type { RedisTarget } from './redis-target.js';

export type RedisClient = Redis | Cluster;

export interface RedisClientOptions {
  /** Prepended by ioredis to every key of every command. */
  keyPrefix?: string;
  /** A connection (or a cluster's map of slots) not ready this long after connecting is dropped and tried again. */
  connectTimeoutMs: number;
  /** Connection errors, which the client recovers from on its own; callers learn of outages from their calls. */
  onError: (err: Error) => void;
}

const retryStrategy = (attempt: number): number => Math.min(attempt * 200, 2000);

/**
 * A primary demoted by a failover answers writes with READONLY for as long as the connection lasts: reconnect (through
 * Sentinel, to the new primary; through DNS, for a managed service's primary endpoint) without resending the command,
 * which has failed.
 */
const reconnectOnError = (err: Error): 1 | false => (err.message.startsWith('READONLY') ? 1 : false);

/** Options for every connection to a server: no offline queue, one try, nothing resent after a reconnect. */
function connectionOptions(opts: RedisClientOptions, credentials: { username?: string; password?: string; tls?: boolean }): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: opts.connectTimeoutMs,
    retryStrategy,
    autoResendUnfulfilledCommands: false,
    reconnectOnError,
    ...(credentials.username !== undefined && { username: credentials.username }),
    ...(credentials.password !== undefined && { password: credentials.password }),
    ...(credentials.tls && { tls: {} }),
  };
}

/** @example const redis = openRedisClient(parseRedisTarget(flags.redis), { connectTimeoutMs: 1000, onError: log }); */
export function openRedisClient(target: RedisTarget, opts: RedisClientOptions): RedisClient {
  const io = loadIoredis();
  let client: RedisClient;
  if (target.kind === 'cluster') {
    const cluster = new io.Cluster(target.nodes, clusterOptions(target, opts));
    // Each node's connection: a cluster's own deadline covers only its map of slots.
    cluster.on('+node', (node: Redis) => guardHandshake(node, opts.connectTimeoutMs));
    client = cluster;
  } else {
    const redis =
      target.kind === 'single'
        ? new io.Redis(target.url, { ...connectionOptions(opts, {}), keyPrefix: opts.keyPrefix })
        : new io.Redis({
            ...connectionOptions(opts, target),
            keyPrefix: opts.keyPrefix,
            sentinels: target.sentinels,
            name: target.name,
            db: target.db,
            sentinelUsername: target.sentinelUsername,
            sentinelPassword: target.sentinelPassword,
            ...(target.tls && { enableTLSForSentinelMode: true, sentinelTLS: {} }),
            // Told of a switch at once (Sentinel's +switch-master), rather than at the old primary's first READONLY.
            failoverDetector: true,
          });
    guardHandshake(redis, opts.connectTimeoutMs);
    client = redis;
  }
  client.on('error', (err: Error) => opts.onError(withoutCommands(err)));
  return client;
}

/**
 * `err` without the commands ioredis attaches to it and to the errors it wraps: a refused AUTH's arguments are the
 * password, which a debug log line of the connection error showed.
 */
function withoutCommands(err: Error): Error {
  const seen = new Set<unknown>();
  const scrub = (e: unknown): void => {
    if (!(e instanceof Error) || seen.has(e)) return;
    seen.add(e);
    delete (e as { command?: unknown }).command;
    const nested = e as { lastNodeError?: unknown; previousErrors?: unknown; cause?: unknown };
    scrub(nested.lastNodeError);
    scrub(nested.cause);
    if (Array.isArray(nested.previousErrors)) nested.previousErrors.forEach(scrub);
  };
  scrub(err);
  return err;
}

function clusterOptions(target: Extract<RedisTarget, { kind: 'cluster' }>, opts: RedisClientOptions): ClusterOptions {
  return {
    keyPrefix: opts.keyPrefix,
    enableOfflineQueue: false,
    slotsRefreshTimeout: opts.connectTimeoutMs,
    clusterRetryStrategy: retryStrategy,
    // A command refused while slots have no primary (CLUSTERDOWN, a failover in progress), or whose node connection
    // is not ready or closed under it ("Connection is closed."), is not tried again by the client: its retries, every
    // 100 ms until the node answered, went on after the caller had given up and counted what it had been told was
    // refused. Callers that want one more try make it within their own deadline (see sendWithin). MOVED and
    // ASK are still followed at once: a redirection, not a failure.
    retryDelayOnClusterDown: 0,
    retryDelayOnFailover: 0,
    // ioredis keeps each node's own offline queue and, for nodes, no reconnecting: the cluster finds them again.
    redisOptions: connectionOptions(opts, target),
  };
}

/** Longest wait for QUIT at close (a stalled connection would never answer it). */
const QUIT_TIMEOUT_MS = 500;

/**
 * Quits politely when connected, then drops whatever is left: a connection that did not answer QUIT, and the
 * connections to Sentinels that watch for a failover, which QUIT alone leaves open (and the process running).
 */
export async function closeRedis(client: RedisClient): Promise<void> {
  if (client.status === 'ready') {
    try {
      await withTimeout(client.quit(), QUIT_TIMEOUT_MS, 'QUIT');
    } catch {
      // The connection went away while quitting, or did not answer.
    }
  }
  client.disconnect();
}

/**
 * `err`'s message, with the node's own error a cluster keeps beside its "Failed to refresh slots cache." (a wrong
 * password, a refused connection), which alone says why.
 */
export function redisErrorMessage(err: Error): string {
  const node = (err as { lastNodeError?: Error }).lastNodeError;
  return node ? `${err.message} ${node.message}` : err.message;
}

/** What ioredis rejects a command with when its connection is not ready, or closed before the command was answered. */
const CONNECTION_CLOSED = 'Connection is closed.';

/** The wait before a command a cluster node's connection refused is sent again (ioredis's own is 100 ms). */
const SEND_AGAIN_AFTER_MS = 20;

/**
 * Runs `command` within `ms` (withTimeout's TimeoutError after it, naming `what`), its write held to the end of the
 * turn with the turn's other commands (redis-coalesce.ts) and `ms` counted from then; on a cluster, sends it again
 * while a node's connection refuses it as closed (a node the client is still connecting to, or one tollgate just
 * reset): never once the deadline has passed or `stillWanted()` says its caller gave up. One server or Sentinel fail
 * at once instead, as before.
 */
export function sendWithin<T>(client: RedisClient, command: () => Promise<T>, ms: number, what: string, stillWanted: () => boolean = () => true): Promise<T> {
  return client.isCluster ? sendToClusterWithin(client, command, ms, what, stillWanted) : withTimeout(send(client, command), ms, what, { fromTurnEnd: true });
}

/** `command()` with its write held to the end of the turn (redis-coalesce.ts); a throw becomes a rejection. */
function send<T>(client: RedisClient, command: () => Promise<T>): Promise<T> {
  coalesceWrites(client);
  try {
    return command();
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

async function sendToClusterWithin<T>(client: RedisClient, command: () => Promise<T>, ms: number, what: string, stillWanted: () => boolean): Promise<T> {
  let late = false;
  const wanted = () => !late && stillWanted();
  const attempts = async (): Promise<T> => {
    for (;;) {
      try {
        return await send(client, command);
      } catch (err) {
        if ((err as Error).message !== CONNECTION_CLOSED || !wanted()) throw err;
        await new Promise((resolve) => setTimeout(resolve, SEND_AGAIN_AFTER_MS));
        if (!wanted()) throw err;
      }
    }
  };
  try {
    return await withTimeout(attempts(), ms, what, { fromTurnEnd: true });
  } finally {
    late = true;
  }
}
