// Commands sent to Redis in one event-loop turn leave in one write. ioredis writes each command to its socket at once,
// one syscall apiece, and on loopback or a fast network that write (the kernel's TCP path, the wake-up of Redis) cost
// the gateway more CPU than the rest of the command: a request's policy chain sends several, and concurrent requests
// send theirs in the same turn. ioredis's own auto-pipelining would batch them too, but it sends a script's whole text
// with every call it pipelines (its "script loaded" mark is kept per socket, and a pipeline is a new one each time).
import type { Socket } from 'node:net';
import type { Cluster, Redis } from 'ioredis';
import type { RedisClient } from './redis-client.js';

/** Clients whose sockets are corked until the end of this turn. */
const held = new WeakSet<RedisClient>();

/**
 * Corks the client's sockets (every node's, for a cluster: which one a command goes to is decided inside ioredis)
 * until the turn's check phase, when what was written meanwhile leaves in one writev per socket. Called before each
 * command: it delays a command by at most the rest of the turn, and the order of commands on a socket is unchanged.
 */
export function coalesceWrites(client: RedisClient): void {
  if (held.has(client)) return;
  const streams: Socket[] = [];
  for (const redis of client.isCluster ? (client as Cluster).nodes('all') : [client as Redis]) {
    const stream = (redis as { stream?: Socket }).stream;
    if (stream && !stream.destroyed) {
      stream.cork();
      streams.push(stream);
    }
  }
  held.add(client);
  setImmediate(() => {
    held.delete(client);
    for (const stream of streams) stream.uncork();
  });
}
