// The simulator's public surface for the CLI, tests, benchmarks and the demo.
export { startSimFleet, type SimFleet, type SimFleetOptions } from './fleet.js';
export { SIM_DEFAULTS, type SimServerOptions } from './options.js';
export { SimServer, startSimServer, type SimServerState } from './server.js';
export type { FaultOptions } from './faults.js';
