// A gateway with its ext_proc listener in its own process, for the two-process tests and the bench: argv[2] is JSON
// ExtprocGatewayArgs; prints `READY <port> <adminPort> <extprocPort>`; closes on SIGTERM or when stdin ends.
import { pino } from 'pino';
import { startGateway, type Gateway } from '../../src/gateway/gateway.js';
import type { ExtprocRole, ExtprocServerOptions } from '../../src/extproc/server.js';
import { manifest } from './manifests.js';
import { LOOPBACK } from './loopback-gateway.js';

export interface ExtprocGatewayArgs {
  /** [kind, name, spec] for the manifest() helper. */
  manifests: [kind: string, name: string, spec: unknown][];
  roles?: ExtprocRole[];
  responseBodyMode?: ExtprocServerOptions['responseBodyMode'];
}

const args = JSON.parse(process.argv[2] ?? '{}') as ExtprocGatewayArgs;
let gateway: Gateway | undefined;

function stop(): void {
  const g = gateway;
  gateway = undefined;
  if (!g) process.exit(0);
  g.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
}

process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();

try {
  gateway = await startGateway({
    configPaths: [],
    manifests: args.manifests.map(([kind, name, spec]) => manifest(kind, name, spec)),
    ...LOOPBACK,
    extprocPort: 0,
    extproc: { roles: args.roles, responseBodyMode: args.responseBodyMode },
    logger: pino({ level: 'warn' }, process.stderr),
  });
  process.stdout.write(`READY ${gateway.port} ${gateway.adminPort} ${gateway.extprocPort}\n`);
} catch (err) {
  console.error('start failed:', err);
  process.exit(1);
}
