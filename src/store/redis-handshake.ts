// ioredis's ready check (INFO after each connect) has no deadline of its own: on a connection gone silent then (a
// flow a NAT forgot) the client would wait for it forever, refusing every call without an offline queue. Not
// ioredis's commandTimeout either: its plain timer also fires on the answers of a stalled event loop (with-timeout.ts).
import type { Redis } from 'ioredis';
import { deadlineAfterIo } from '../lib/with-timeout.js';

/** Destroys each new connection of `redis` that is not ready `ms` after connecting, so the client connects again. */
export function guardHandshake(redis: Redis, ms: number): void {
  let cancel = (): void => {};
  redis.on('connect', () => {
    const stream = redis.stream;
    cancel();
    cancel = deadlineAfterIo(ms, () => {
      if (redis.status !== 'ready' && redis.stream === stream && !stream.destroyed) stream.destroy();
    });
  });
  for (const settled of ['ready', 'close']) redis.on(settled, () => cancel());
}
