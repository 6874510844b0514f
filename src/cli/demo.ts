// `tollgate demo`: a simulated fleet (two base models and a LoRA adapter on three servers) plus the gateway
// on examples/quickstart, then the lines a user pastes to point any OpenAI client at it.
import { Command, CommanderError } from 'commander';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../lib/package-root.js';
import { readManifestFiles } from '../config/files.js';
import { ConfigError, type Manifest } from '../config/manifest.js';
import type { InferencePoolSpec } from '../config/inference-kinds.js';
import type { Gateway } from '../gateway/gateway.js';
import { createLogger, envLogLevel, envLogLevelProblem } from '../lib/logger.js';
import { ListenError } from '../gateway/listen.js';
import type { SimFleet } from '../sim/index.js';
import { flagFailure, parsePort, untilSignal } from './options.js';
import { listenFlagError } from './serve.js';
import { startFleetOn } from './sim.js';

/** The quickstart's pools name the simulator's default ports; the demo points them at the fleet it started. */
const QUICKSTART_SIM_PORT = 8000;

/** `urls`: the fleet's servers in the quickstart's order (its ports 8000, 8001, 8002). */
function moveEndpoints(manifests: Manifest[], urls: readonly string[]): Manifest[] {
  return manifests.map((m) => {
    if (m.kind !== 'InferencePool') return m;
    const spec = m.spec as InferencePoolSpec;
    const endpoints = spec.endpoints.map((e) => {
      const u = new URL(e);
      const offset = Number(u.port) - QUICKSTART_SIM_PORT;
      return u.hostname === '127.0.0.1' && offset >= 0 && offset < urls.length ? urls[offset] : e;
    });
    return { ...m, spec: { ...spec, endpoints } };
  });
}

/** A developer, an app on the quickstart's "starter" product, and a fresh key for it (shown once, at each start). */
async function demoKey(gateway: Gateway): Promise<string> {
  const db = gateway.apim.db.withActor('demo');
  const email = 'demo@tollgate.local';
  const developer = (await db.developers.find(email)) ?? (await db.developers.create({ email, firstName: 'Demo', lastName: 'Developer', userName: 'demo' }));
  const app = (await db.apps.findByName(developer.id, 'demo-app')) ?? (await db.apps.create(developer.id, { name: 'demo-app' }));
  // The key printed last is the demo's one: those of earlier starts are revoked, not left working where nobody sees them.
  let pageToken: string | undefined;
  do {
    const keys = await db.credentials.listForApp(app.id, { pageToken });
    for (const old of keys.items) if (old.status !== 'revoked') await db.credentials.setStatus(old.keyId, 'revoked');
    pageToken = keys.nextPageToken;
  } while (pageToken !== undefined);
  const issued = await db.credentials.issue({ appId: app.id, apiProducts: [{ apiproduct: 'starter', status: 'approved' }] });
  return issued.consumerKey;
}

/** How long the demo waits for every pool's first scrape before it prints its commands anyway. */
const POOLS_READY_MS = 10_000;

async function untilPoolsReachable(gateway: { picker: { ready(): { reachable: boolean }[] } }, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline && !gateway.picker.ready().every((p) => p.reachable)) await new Promise((r) => setTimeout(r, 20));
}

/** The analytics spool's lock names its holder; another demo started in the same directory holds it. */
const HELD_BY = /is in use by (process \d+|another process)/;

/**
 * The demo's configuration is its own, so a configuration error at start is about its data directory: exit code 2,
 * as serve gives, in words for the demo (the spool's advice, "give each gateway process its own analytics.directory",
 * is for serve's manifests).
 */
function dataDirFailure(dataDir: string, err: ConfigError): CommanderError {
  const lines = err.problems.map((p) => {
    const holder = HELD_BY.exec(p)?.[1];
    return holder ? `another tollgate demo or gateway (${holder}) holds ${dataDir}; stop it, or run the demo from another directory` : p;
  });
  for (const line of lines) process.stderr.write(`tollgate demo: ${line}\n`);
  return new CommanderError(2, 'tollgate.config', lines[0]);
}

export function demoCommand(): Command {
  return new Command('demo')
    .description('simulated fleet + gateway on examples/quickstart, ready for any OpenAI client')
    .option('--port <n>', 'data-plane port', parsePort, 8080)
    .option('--admin-port <n>', 'admin API port', parsePort, 8081)
    .option('--sim-port <n>', 'first port of the simulated fleet (three consecutive ports; 0: free ports)', parsePort, QUICKSTART_SIM_PORT)
    .action(async (opts, cmd: Command) => {
      const levelProblem = envLogLevelProblem();
      if (levelProblem) cmd.error(`tollgate demo: ${levelProblem}`, { exitCode: 2 });
      if (opts.simPort + 2 > 65535) cmd.error(`tollgate demo: --sim-port ${opts.simPort}: the fleet's three consecutive ports run past 65535`, { exitCode: 2 });
      // Made before the fleet starts: a demo run where it cannot write (a read-only or root-owned directory) exited 1
      // with a bare EACCES, its fleet already up.
      const dataDir = join(process.cwd(), '.tollgate');
      try {
        mkdirSync(dataDir, { recursive: true });
      } catch (err) {
        cmd.error(`tollgate demo: cannot create ${dataDir}: ${(err as Error).message}; run the demo from a directory you can write`, { exitCode: 2 });
      }
      const logger = createLogger({ level: envLogLevel() ?? 'warn' });
      const { startGateway } = await import('../gateway/gateway.js');
      const fleets: SimFleet[] = [];
      try {
        fleets.push(await startFleetOn('--sim-port', { replicas: 2, port: opts.simPort, model: 'meta-llama/Llama-3.1-8B-Instruct', loras: ['sql-lora'], maxLoras: 2 }));
        fleets.push(await startFleetOn('--sim-port', { replicas: 1, port: opts.simPort === 0 ? 0 : opts.simPort + 2, model: 'Qwen/Qwen2.5-1.5B-Instruct', seed: 7 }));
        const simUrls = fleets.flatMap((f) => f.urls);
        const manifests = moveEndpoints(readManifestFiles([join(packageRoot(), 'examples', 'quickstart')]), simUrls);
        const gateway = await startGateway({
          configPaths: [],
          manifests,
          port: opts.port,
          adminPort: opts.adminPort,
          host: '127.0.0.1',
          logger,
          watch: false,
          db: `sqlite:${join(dataDir, 'demo.db')}`,
        }).catch((err: unknown) => {
          // A --port or --admin-port that is taken: one line naming the flag, exit code 2, as from serve.
          if (err instanceof ListenError) throw flagFailure(listenFlagError(err));
          if (err instanceof ConfigError) throw dataDirFailure(dataDir, err);
          throw err;
        });
        // The commands it prints are meant to be run at once: a request before the first scrape of its pool would find
        // no endpoint with fresh metrics (the sheddable model refused as saturated).
        await untilPoolsReachable(gateway, POOLS_READY_MS);
        const key = await demoKey(gateway);
        const base = `http://127.0.0.1:${gateway.port}/v1`;
        // A closing terminal sends SIGHUP: the demo stops as on Ctrl-C (its configuration is the bundled quickstart,
        // with nothing to read again), not at once as Node's default would. Listened for before the lines that
        // announce it is up: a signal sent as soon as they are read found no listener yet.
        const stopped = untilSignal(['SIGINT', 'SIGTERM', 'SIGHUP']);
        process.stdout.write(
          [
            `tollgate demo: gateway on ${gateway.url}, admin on ${gateway.adminUrl}, simulated fleet on ${simUrls.map((u) => new URL(u).port).join(', ')}`,
            `models: ${[...gateway.config.models.keys()].join(', ')}`,
            '',
            `export OPENAI_BASE_URL=${base}`,
            `export OPENAI_API_KEY=${key}`,
            `curl -s ${base}/chat/completions -H "authorization: Bearer $OPENAI_API_KEY" -H 'content-type: application/json' -d '{"model":"llama-3.1-8b","messages":[{"role":"user","content":"Hello!"}]}'`,
            '',
            'Ctrl-C stops the gateway and the fleet.',
            '',
          ].join('\n'),
        );
        await stopped;
        await gateway.close();
      } finally {
        await Promise.all(fleets.map((f) => f.close()));
      }
    });
}
