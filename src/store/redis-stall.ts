// Dropping a Redis connection that let a command time out, for the clients that give up on commands (counters, caches).
import type { Socket } from 'node:net';
import type { Redis } from 'ioredis';

/**
 * A connection that lets a command time out is stalled (a partition, a blocked server, a flow a NAT forgot): every
 * command written after it would wait there too, piling up in memory, for as long as the socket lives (with a
 * middlebox still acknowledging, for good). Resets it: ioredis fails what was pending and reconnects with its retry
 * strategy. Returns whether there was a connection to drop.
 */
export function dropStalledConnection(redis: Redis): boolean {
  const stream = redis.stream;
  if (redis.status !== 'ready' || !stream || stream.destroyed) return false;
  // Not disconnect(): it ends the stream gracefully, which still delivers what is buffered. A reset discards the
  // unsent backlog (TLS sockets cannot be reset, and are destroyed instead).
  try {
    (stream as Socket).resetAndDestroy();
  } catch {
    stream.destroy();
  }
  return true;
}
