// Child process of `bench routing`: the simulated fleet, apart from the gateway so that the engines' step timers do
// not wait behind the gateway's work (and the reverse) on one event loop. Replica i listens on port + i; prints
// "READY <port>".
import { startSimFleet } from '../src/sim/index.js';
import { serveUntilStopped } from './child.js';

export interface RoutingFleetArgs {
  port: number;
  endpoints: number;
  timeScale: number;
  seed: number;
  maxNumSeqs: number;
  kvBlocks: number;
  model: string;
  loras?: string[];
  maxLoras?: number;
}

const args = JSON.parse(process.argv[2]) as RoutingFleetArgs;
const fleet = await startSimFleet({
  port: args.port,
  replicas: args.endpoints,
  model: args.model,
  loras: args.loras,
  maxLoras: args.maxLoras,
  timeScale: args.timeScale,
  seed: args.seed,
  maxNumSeqs: args.maxNumSeqs,
  kvBlocks: args.kvBlocks,
});
serveUntilStopped(args.port, () => fleet.close());
