// For tests of deadlines under an event-loop stall: the stall itself, and a loopback connection whose other end can
// answer at once (into the kernel's buffer) while this process is not reading; and for tests of work that must not
// stall the event loop, the longest stall it caused.
import assert from 'node:assert/strict';
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

/**
 * Runs `work` with a 1 ms ticker beside it: `longest` is the longest the event loop went without running the ticker,
 * `took` how long the work took (both in ms). Work that holds the loop throughout has `longest` about `took`.
 */
export async function measureStalls<T>(work: () => Promise<T>): Promise<{ result: T; longest: number; took: number }> {
  let last = performance.now();
  let longest = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  const started = performance.now();
  try {
    const result = await work();
    const took = performance.now() - started;
    // A loop held to the end never ran the tick after it.
    return { result, longest: Math.max(longest, performance.now() - last), took };
  } finally {
    clearInterval(tick);
  }
}

/**
 * Runs `work`, failing unless the event loop kept turning through it: work that holds the loop throughout stalls it
 * for all of its length, while work that yields between steps stalls it for a step at most. Half leaves room for a
 * pause of the host's (a WAL checkpoint's fsync, a GC) on a busy machine.
 */
export async function keepsTurning<T>(work: () => Promise<T>): Promise<T> {
  const { result, longest, took } = await measureStalls(work);
  assert.ok(longest < Math.max(100, took / 2), `the event loop stalled ${Math.round(longest)} ms of ${Math.round(took)} ms`);
  return result;
}
