// Child process for the migration kill test: migrates up to a cut point, says `cut`, and waits to be SIGKILLed there.
// Usage: node --import tsx test-migrate-cut.ts DATABASE_URL SCHEMA INDEX between|inside — the cut comes before
// MIGRATIONS[INDEX] (`between`: after the previous one and its version row) or after its DDL but before its version row (`inside`).
import { silentLogger } from '../lib/logger.js';
import { parseDatabaseUrl } from './database-url.js';
import { migrate } from './migrate.js';
import { MIGRATIONS, type Migration } from './migrations/index.js';
import { openPostgres } from './postgres-connection.js';
import { openSqlite } from './sqlite-connection.js';

const [url, schema, index, where] = process.argv.slice(2);
const target = parseDatabaseUrl(url);
const db = target.dialect === 'sqlite' ? openSqlite(target.file) : openPostgres({ url: target.url, schema: schema || undefined }, silentLogger);
const cutAt = MIGRATIONS[Number(index)];
const cut: Migration = {
  ...cutAt,
  async up(conn, dialect) {
    if (where === 'inside') await cutAt.up(conn, dialect);
    // A pipe write is synchronous on Linux: once the parent reads it, the transaction is at the cut.
    process.stdout.write('cut\n');
    setInterval(() => {}, 1000);
    await new Promise(() => {});
  },
};
await migrate(db, target.dialect, schema || undefined, [...MIGRATIONS.slice(0, Number(index)), cut]);
