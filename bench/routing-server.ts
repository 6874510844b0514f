// Child process of `bench routing`: the gateway in front of the simulated fleet (another child), so the load generator
// has its own event loop. Prints "ADMIN <port>" then "READY <port>"; exits on SIGTERM or with its parent.
import { manifestOf } from '../src/config/manifest.js';
import type { EndpointPickerConfigSpec } from '../src/config/inference-kinds.js';
import { startGateway } from '../src/gateway/gateway.js';
import { serveUntilStopped } from './child.js';

export interface RoutingServerArgs {
  /** The fleet's endpoints. */
  urls: string[];
  timeScale: number;
  picker: EndpointPickerConfigSpec;
  models: { name: string; target: string; criticality?: string }[];
}

const args = JSON.parse(process.argv[2]) as RoutingServerArgs;
// The picker's clocks are real time; divide them by the time scale so they mean the same in simulated time.
const ms = (simulated: number) => `${Math.max(1, Math.round(simulated / args.timeScale))}ms`;
const gateway = await startGateway({
  configPaths: [],
  manifests: [
    manifestOf('GatewaySettings', 'settings', {
      logging: { level: 'error', accessLog: false },
      scheduler: { scrapeInterval: ms(50), saturation: { metricsFreshness: ms(200) }, flowControl: { maxWait: ms(30_000) } },
    }),
    manifestOf('InferencePool', 'pool', { endpoints: args.urls }),
    manifestOf('EndpointPickerConfig', 'picker', { ...args.picker, poolRef: { name: 'pool' } }),
    ...args.models.map((m) =>
      manifestOf('InferenceModel', m.name.replace(/[^a-z0-9-]/gi, '-').toLowerCase(), {
        modelName: m.name,
        poolRef: { name: 'pool' },
        targetModels: [{ name: m.target, weight: 1 }],
        ...(m.criticality ? { criticality: m.criticality } : {}),
      }),
    ),
  ],
  port: 0,
  adminPort: 0,
  host: '127.0.0.1',
  watch: false,
});
serveUntilStopped(gateway.port, () => gateway.close(), [`ADMIN ${gateway.adminPort}`]);
