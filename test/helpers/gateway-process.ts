// A gateway in its own process, for multi-replica tests: argv[2] is JSON GatewayProcessArgs; prints `READY <port> <adminPort>`, closes on SIGTERM or when stdin ends (the test runner went away).
import { pino } from 'pino';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type Gateway } from '../../src/gateway/gateway.js';
import { manifest } from './manifests.js';
import { LOOPBACK } from './loopback-gateway.js';

export interface GatewayProcessArgs {
  /** [kind, name, spec] for the manifest() helper. */
  manifests: [kind: string, name: string, spec: unknown][];
  db?: string;
  dbSchema?: string;
  redis?: string;
  redisKeyPrefix?: string;
  /** A spool directory that outlives the process (a restart replays it); a temporary one by default. */
  analyticsDir?: string;
}

const args = JSON.parse(process.argv[2] ?? '{}') as GatewayProcessArgs;
let gateway: Gateway | undefined;
let stopping = false;

function stop(code: number): void {
  if (stopping) return;
  stopping = true;
  const done = () => process.exit(code);
  if (!gateway) done();
  else gateway.close().then(done, (err: unknown) => {
    console.error('close failed:', err);
    process.exit(1);
  });
}

process.on('SIGTERM', () => stop(0));
process.stdin.on('end', () => stop(0));
process.stdin.resume();

const analyticsDir = args.analyticsDir ?? mkdtempSync(join(tmpdir(), 'tollgate-replica-'));
if (!args.analyticsDir) process.on('exit', () => rmSync(analyticsDir, { recursive: true, force: true }));

try {
  gateway = await startGateway({
    configPaths: [],
    manifests: args.manifests.map(([kind, name, spec]) => manifest(kind, name, spec)),
    ...LOOPBACK,
    db: args.db,
    dbSchema: args.dbSchema,
    redis: args.redis,
    redisKeyPrefix: args.redisKeyPrefix,
    // Each replica spools its usage records in a directory of its own, as on separate machines.
    analyticsDir,
    logger: pino({ level: 'warn' }, process.stderr),
  });
  process.stdout.write(`READY ${gateway.port} ${gateway.adminPort}\n`);
} catch (err) {
  console.error('start failed:', err);
  process.exit(1);
}
