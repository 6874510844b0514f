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

/**
 * Which node a cluster's command went to is not known here: every node's connection is reset (what was pending on
 * the others fails at once, as in an outage). The cluster is taken out of `ready` first: a cluster client sends a
 * command whose connection closed under it once more, to another node, while it is ready — which would apply a command
 * after its caller had given up on it. It reconnects on its own, with its retry strategy.
 */
function dropCluster(cluster: Cluster): boolean {
  if (cluster.status !== 'ready') return false;
  for (const node of cluster.nodes()) if (node.stream && !node.stream.destroyed) reset(node.stream);
  // In the same turn, before the connections' close events fail their commands: disconnect() alone would end them
  // gracefully, delivering the backlog, so the resets come first.
  cluster.disconnect(true);
  return true;
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
