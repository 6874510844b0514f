// A fleet of simulated servers on consecutive ports, started and stopped together.
import { freePortRange } from '../lib/ports.js';
import type { SimServerOptions } from './options.js';
import { startSimServer, type SimServer } from './server.js';

export interface SimFleetOptions extends Omit<SimServerOptions, 'port' | 'replica'> {
  replicas?: number;
  /** First port; replica i listens on port + i. 0 (the default) finds a free range. */
  port?: number;
}

export interface SimFleet {
  /** Base URLs (http://127.0.0.1:port), one per replica, in port order. */
  urls: string[];
  servers: SimServer[];
  close(): Promise<void>;
}

/** const fleet = await startSimFleet({ replicas: 4, timeScale: 20 }); ...; await fleet.close(); */
export async function startSimFleet(opts: SimFleetOptions = {}): Promise<SimFleet> {
  const replicas = opts.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1) throw new Error(`replicas must be a positive integer, got ${replicas}`);
  const fixed = opts.port !== undefined && opts.port !== 0;
  // A free range can be taken by someone else before we bind it; pick another one then.
  for (let attempt = 0; ; attempt++) {
    const base = fixed ? opts.port! : await freePortRange(replicas);
    try {
      return await startAll(opts, base, replicas);
    } catch (err) {
      if (fixed || attempt >= 4 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
}

async function startAll(opts: SimFleetOptions, base: number, replicas: number): Promise<SimFleet> {
  const started = await Promise.allSettled(
    Array.from({ length: replicas }, (_, i) => startSimServer({ ...opts, port: base + i, replica: i })),
  );
  const servers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(servers.map((s) => s.close()));
    throw failed.reason;
  }
  return {
    urls: servers.map((s) => s.url),
    servers,
    close: async () => {
      await Promise.all(servers.map((s) => s.close()));
    },
  };
}
