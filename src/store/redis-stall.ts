// Dropping a Redis connection that let a command time out, for the clients that give up on commands (counters, caches).
import type { Socket } from 'node:net';
import type { Cluster, Redis } from 'ioredis';
import type { RedisClient } from './redis-client.js';

/**
 * A connection that lets a command time out is stalled (a partition, a blocked server, a flow a NAT forgot): every
 * command written after it would wait there too, piling up in memory, for as long as the socket lives (with a
 * middlebox still acknowledging, for good). Resets it: ioredis fails what was pending and reconnects with its retry
 * strategy. Returns whether there was a connection to drop.
 */
export function dropStalledConnection(client: RedisClient): boolean {
  if (client.isCluster) return dropCluster(client as Cluster);
  const redis = client as Redis;
  if (redis.status !== 'ready' || !redis.stream || redis.stream.destroyed) return false;
  reset(redis.stream);
  return true;
}

/** What the commands waiting on a stalled cluster node fail with: not a closed connection, which the client would retry. */
const ABANDONED = new Error('the Redis node did not answer in time');

/**
 * The nodes with commands waiting are the stalled ones; each is reset alone, so the cluster client stays ready on the
 * others and finds the rest of the cluster through them (a whole-cluster reconnect knows only the URL's nodes). Their
 * waiting commands are failed first, with ABANDONED: failed by the reset itself ("Connection is closed"), a ready
 * cluster client sends them again 100 ms later, which would apply a command after its caller had given up on it.
 */
function dropCluster(cluster: Cluster): boolean {
  let dropped = false;
  for (const node of cluster.nodes()) {
    if (node.commandQueue.length === 0 || !node.stream || node.stream.destroyed) continue;
    const waiting = node.commandQueue.toArray();
    node.commandQueue.clear();
    for (const { command } of waiting) command.reject(ABANDONED);
    reset(node.stream);
    dropped = true;
  }
  return dropped;
}

/**
 * Not disconnect() alone: it ends the stream gracefully, which still delivers what is buffered. A reset discards the
 * unsent backlog (TLS sockets cannot be reset, and are destroyed instead).
 */
function reset(stream: Redis['stream']): void {
  try {
    (stream as Socket).resetAndDestroy();
  } catch {
    stream.destroy();
  }
}
