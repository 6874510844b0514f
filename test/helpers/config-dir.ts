// A directory of --config files (a pool and model before a stub, API-management manifests in apim.yaml) that also
// holds the gateway's SQLite store, for tests that restart a gateway on it or change its files between starts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { pino } from 'pino';
import { startGateway, type Gateway } from '../../src/gateway/gateway.js';
import { poolAndModelYaml } from './manifests.js';
import { LOOPBACK } from './loopback-gateway.js';

/** The directory, removed after the test file; `apim` documents as JSON in apim.yaml. */
export function configDir(upstreamUrl: string, apim: unknown[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-config-dir-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'models.yaml'), poolAndModelYaml(upstreamUrl));
  writeApim(dir, apim);
  return dir;
}

export const writeApim = (dir: string, apim: unknown[]) => writeFileSync(join(dir, 'apim.yaml'), apim.map((d) => JSON.stringify(d)).join('\n---\n'));

/** A gateway on the directory's files and store; its log lines parsed into `logs`. */
export function startOnDir<T>(dir: string, logs: T[] = []): Promise<Gateway> {
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line) as T) });
  return startGateway({ configPaths: [dir], ...LOOPBACK, db: `sqlite:${join(dir, 'tollgate.db')}`, analyticsDir: join(dir, 'analytics'), logger });
}
