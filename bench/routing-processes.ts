// bench routing's real-time target: the simulated fleet and the gateway each in a child process, the load generator
// (this process) streaming every request over HTTP.
import { fileURLToPath } from 'node:url';
import { extname } from 'node:path';
import { freePortRange } from '../src/lib/ports.js';
import { startChild } from './processes.js';
import { replay } from './routing-load.js';
import { baseModelOf, parseQueueCounts, type RoutingTarget, type TargetSpec } from './routing-target.js';
import type { RoutingFleetArgs } from './routing-fleet.js';
import type { RoutingServerArgs } from './routing-server.js';

const sibling = (name: string) => fileURLToPath(new URL(`./${name}${extname(fileURLToPath(import.meta.url))}`, import.meta.url));
const SERVER = sibling('routing-server');
const FLEET = sibling('routing-fleet');

export async function startProcessTarget(spec: TargetSpec): Promise<RoutingTarget> {
  const { workload: w, endpoints, timeScale, seed } = spec;
  // Both start at once on known ports: the gateway's scrapes fail until the fleet listens, and recover by themselves.
  const port = await freePortRange(endpoints);
  const fleetArgs: RoutingFleetArgs = { port, endpoints, timeScale, seed, maxNumSeqs: spec.maxNumSeqs, kvBlocks: spec.kvBlocks, model: baseModelOf(w), ...w.sim };
  const urls = Array.from({ length: endpoints }, (_, i) => `http://127.0.0.1:${port + i}`);
  const args: RoutingServerArgs = { urls, timeScale, picker: spec.picker, models: w.models };
  const [fleetStarted, childStarted] = await Promise.allSettled([startChild(FLEET, [JSON.stringify(fleetArgs)], 60_000), startChild(SERVER, [JSON.stringify(args)], 60_000)]);
  if (fleetStarted.status === 'rejected' || childStarted.status === 'rejected') {
    if (fleetStarted.status === 'fulfilled') await fleetStarted.value.stop();
    if (childStarted.status === 'fulfilled') await childStarted.value.stop();
    throw fleetStarted.status === 'rejected' ? fleetStarted.reason : (childStarted as PromiseRejectedResult).reason;
  }
  const fleet = fleetStarted.value;
  const child = childStarted.value;
  const stop = async () => {
    await child.stop();
    await fleet.stop();
  };
  const admin = Number(child.lines.find((l) => l.startsWith('ADMIN '))!.slice(6));
  const url = `http://127.0.0.1:${child.port}`;
  const target: RoutingTarget = {
    replay: (requests, onProgress, opts) => replay(requests, { url, timeScale, drainMs: (spec.drainSeconds * 1000) / timeScale, onProgress, ...opts }),
    queueCounts: async () => parseQueueCounts(await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text()),
    settle: () => settle(admin),
    stop,
  };
  try {
    // Until every endpoint has been scraped the picker has nothing to go on.
    await target.settle();
  } catch (err) {
    await stop();
    throw err;
  }
  return target;
}

/**
 * Waits until the fleet is ready and idle: every endpoint scraped, its waiting and running 0, nothing in flight
 * through the gateway and its flow-control queue empty; fails after 30 s real.
 */
async function settle(adminPort: number): Promise<void> {
  type View = { queueLength?: number; endpoints: { status?: string; inFlight?: number; metrics?: { waiting?: number; running?: number } }[] };
  for (let i = 0; ; i++) {
    if (i === 1200) {
      // Measuring on anyway, the next run would overlap what is left of this one: it would not be a measurement.
      throw new Error('the fleet or the gateway was still busy 30 s after a run');
    }
    const view = (await (await fetch(`http://127.0.0.1:${adminPort}/v1/pools/pool`)).json()) as View;
    const busy =
      (view.queueLength ?? 0) > 0 ||
      view.endpoints.some((e) => e.status !== 'ready' || (e.inFlight ?? 0) > 0 || (e.metrics?.waiting ?? 0) + (e.metrics?.running ?? 0) > 0);
    if (!busy) return;
    await new Promise((r) => setTimeout(r, 25));
  }
}
