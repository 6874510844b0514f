// `tollgate validate --config PATH`: what `serve` would refuse in its configuration, checked without serving, as
// `nginx -t` or `envoy --mode validate` do, so a CI step or a pre-deploy hook catches a bad manifest before a
// gateway reads it (a reload keeps the last good configuration and only logs the problem).
import { Command } from 'commander';
import { Registry } from 'prom-client';
import { ConfigError } from '../config/manifest.js';
import { loadConfig } from '../config/load.js';
import { silentLogger } from '../lib/logger.js';
import { processIo, type CommandIo } from './admin-client.js';
import { collect, configFailure } from './options.js';

/** Lines naming file, document, kind/name and field of each problem; none when `serve` would start with these files. */
export async function configProblems(paths: string[]): Promise<{ problems: string[]; documents: number }> {
  try {
    const config = loadConfig(paths);
    // Policies compile against the store as `serve` starts them: an empty in-memory one here, so what is checked is
    // the files alone (objects applied through the admin API are not consulted), and nothing is written anywhere.
    const { ApiManagement } = await import('../apim/api-management.js');
    const apim = await ApiManagement.open({ db: 'sqlite::memory:', logger: silentLogger, registry: new Registry() }, config.manifests);
    await apim.close();
    return { problems: [], documents: config.manifests.length };
  } catch (err) {
    if (err instanceof ConfigError) return { problems: err.problems, documents: 0 };
    throw err;
  }
}

export function validateCommand(io: CommandIo = processIo): Command {
  return new Command('validate')
    .description('check --config manifests as `serve` reads them, without serving (exit code 2 when serve would refuse them)')
    .requiredOption('--config <path>', 'manifest file or directory (repeatable)', collect)
    .action(async (opts: { config: string[] }) => {
      const { problems, documents } = await configProblems(opts.config);
      if (problems.length > 0) throw configFailure(problems, io.err);
      io.out(`configuration ok: ${documents} document${documents === 1 ? '' : 's'}`);
    });
}
