// `tollgate copy-store --from DB --to DB`: a stopped gateway's whole store copied into an empty one, as a deployment
// moves from the default SQLite file to PostgreSQL for replicas: every key keeps working (the store holds only their
// hashes, which no API shows, so no export and import could carry them).
import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { parseDatabaseUrl } from '../store/database-url.js';
import { DatabaseConfigError, DatabaseOpenError, redactUrl } from '../store/errors.js';
import { processIo, type CommandIo } from './admin-client.js';
import { flagFailure } from './options.js';

/** The file of a sqlite: URL (not an in-memory one), else undefined; a bad URL is left to openDatabase to name. */
function sourceFile(url: string): string | undefined {
  try {
    const target = parseDatabaseUrl(url);
    return target.dialect === 'sqlite' && target.file !== ':memory:' ? target.file : undefined;
  } catch {
    return undefined;
  }
}

export function copyStoreCommand(io: CommandIo = processIo): Command {
  return new Command('copy-store')
    .description("copy a stopped gateway's store (products, developers, apps, keys, key-value maps, audit log, OAuth tokens, usage records) into an empty one")
    .requiredOption('--from <url>', 'the store to copy: sqlite:FILE or postgres://...[?schema=NAME]')
    .requiredOption('--to <url>', 'an empty store to copy into (created and migrated if new)')
    .action(async (opts: { from: string; to: string }) => {
      if (opts.from === opts.to) throw flagFailure('copy-store: --from and --to name the same store');
      // Loaded here, not with the CLI: the other commands do without the store's modules.
      const { openDatabase } = await import('../store/open-database.js');
      const { copyStore, TargetNotEmptyError } = await import('../store/copy-store.js');
      const open = async (flag: string, url: string) => {
        try {
          // No LISTEN connection: nothing here serves.
          return await openDatabase(url, { listen: false });
        } catch (err) {
          if (err instanceof DatabaseConfigError || err instanceof DatabaseOpenError) throw flagFailure(`copy-store: ${flag}: ${err.message}`);
          throw err;
        }
      };
      // Opened, a SQLite file that is not there would be made, empty, and "copied": most likely a mistyped path.
      const source = sourceFile(opts.from);
      if (source !== undefined && !existsSync(source)) throw flagFailure(`copy-store: --from: ${source}: no such file`);
      const from = await open('--from', opts.from);
      try {
        const to = await open('--to', opts.to);
        try {
          const copied = await copyStore(from, to, (table, rows) => io.out(`${table}: ${rows} row${rows === 1 ? '' : 's'}`));
          const total = Object.values(copied).reduce((a, b) => a + b, 0);
          io.out(`copied ${total} rows from ${redactUrl(opts.from)} to ${redactUrl(opts.to)}`);
        } catch (err) {
          if (err instanceof TargetNotEmptyError) throw flagFailure(`copy-store: --to: ${err.message}`);
          throw err;
        } finally {
          await to.close();
        }
      } finally {
        await from.close();
      }
    });
}
