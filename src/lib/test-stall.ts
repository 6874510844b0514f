// For tests of deadlines under an event-loop stall: the stall itself, and a loopback connection whose other end can
// answer at once (into the kernel's buffer) while this process is not reading.
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';

/** Keeps the event loop busy, as a long GC or a CPU-starved host would. */
export function stall(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/** A loopback connection: both ends, in this process. */
export async function socketPair(): Promise<{ client: Socket; server: Socket; close(): Promise<void> }> {
  const listener = createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const accepted = once(listener, 'connection');
  const client = connect((listener.address() as AddressInfo).port, '127.0.0.1');
  const [[server]] = await Promise.all([accepted, once(client, 'connect')]);
  return {
    client,
    server,
    close: async () => {
      client.destroy();
      server.destroy();
      listener.close();
      await once(listener, 'close');
    },
  };
}
