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
 * The nodes with commands sent and unanswered are the stalled ones, and so are the nodes still connecting, which hold
 * what was handed to them in a queue of their own, to send once connected, however late; each is reset alone (what
 * waits there fails, and the cluster client sends nothing again: see clusterOptions), so the client stays ready on
 * the others and finds the rest of the cluster through them (a whole-cluster reconnect knows only the URL's nodes).
 */
function dropCluster(cluster: Cluster): boolean {
  let dropped = false;
  for (const node of cluster.nodes()) {
    if (node.status === 'connecting' || node.status === 'connect') node.disconnect();
    else if (node.commandQueue.length > 0 && node.stream && !node.stream.destroyed) reset(node.stream);
    else continue;
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
