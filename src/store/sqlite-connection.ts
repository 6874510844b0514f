// Opens the embedded SQLite database (better-sqlite3) with the pragmas a gateway needs.
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { Tables } from './schema.js';
import { withStatementCache } from './sqlite-statement-cache.js';

/**
 * How long a statement waits, synchronously, for another process's lock before SQLITE_BUSY. A write transaction's
 * BEGIN does not (transaction.ts waits for it asynchronously); what is left are writes outside a transaction and the
 * rare reads that must wait in WAL mode.
 */
export const BUSY_TIMEOUT_MS = 5000;
/** Prepared statements kept: the repeated queries of the hot paths, and the analytics inserts by batch size. */
const STATEMENTS = 64;

export function openSqlite(file: string): Kysely<Tables> {
  const sqlite = new SqliteDatabase(file);
  // WAL lets readers proceed while one writer commits; NORMAL sync is durable across process crashes in WAL mode.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  // Off by default in SQLite; apps and credentials rely on ON DELETE CASCADE.
  sqlite.pragma('foreign_keys = ON');
  return new Kysely<Tables>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite, STATEMENTS) }) });
}
