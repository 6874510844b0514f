// Applies pending migrations at start-up under a lock, so replicas starting together migrate exactly once.
import { sql, type Kysely } from 'kysely';
import { silentLogger, type Logger } from '../lib/logger.js';
import type { DialectName } from './database-url.js';
import { MIGRATIONS, type Migration } from './migrations/index.js';
import { inTransaction } from './transaction.js';

/** First half of the two-int advisory lock key (the second is the schema's hash), arbitrary but fixed. */
export const LOCK_CLASS = 0x70_6c_67; // "tlg"

/**
 * How long start-up waits for the migration lock before it says so. A replica migrating beside this one holds it for
 * well under a second; a hung one (stopped, or cut off with its session left open) for as long as PostgreSQL keeps
 * that session, hours, and the wait is then all there is to see. It goes on waiting: a rolling start waits rightly.
 */
export const LOCK_WAIT_LOG_MS = 3000;

/**
 * One transaction: take the lock, create the schema and the migrations table if needed, apply what is missing.
 * PostgreSQL: a transaction-scoped advisory lock (released at commit, or when a crashed replica's session ends);
 * SQLite: BEGIN IMMEDIATE is the lock. DDL is transactional in both, so a failed migration leaves nothing behind.
 * Applied ids this code does not know (a newer replica migrated first) are left alone.
 * Returns the names of the migrations applied now; `logger` is told when the PostgreSQL lock is long in coming.
 */
export async function migrate(
  db: Kysely<any>,
  dialect: DialectName,
  schema?: string,
  migrations: readonly Migration[] = MIGRATIONS,
  logger: Logger = silentLogger,
): Promise<string[]> {
  // Transactions fail a lock wait after a few seconds (transaction.ts); start-up waits for the migration lock (on
  // SQLite, the file's write lock), and its DDL for the tables' locks, as long as they take, and says so.
  const where = schema ?? (dialect === 'sqlite' ? 'main' : 'public');
  const waiting = setTimeout(() => logger.warn({ schema: where }, 'waiting for the migration lock held by another process'), LOCK_WAIT_LOG_MS);
  try {
    return await inTransaction(db, dialect, 'write', (conn) => migrateLocked(conn, dialect, schema, migrations, waiting), { lockWaitMs: Infinity });
  } finally {
    clearTimeout(waiting);
  }
}

/** With the lock taken (`waiting`, the warning that it is long in coming, is then called off). */
async function migrateLocked(conn: Kysely<any>, dialect: DialectName, schema: string | undefined, migrations: readonly Migration[], waiting: NodeJS.Timeout): Promise<string[]> {
  if (dialect === 'postgres') {
    await sql`select set_config('lock_timeout', '0', true)`.execute(conn);
    await sql`select pg_advisory_xact_lock(${LOCK_CLASS}, hashtext(${schema ?? 'public'}))`.execute(conn);
    if (schema) await sql`create schema if not exists ${sql.id(schema)}`.execute(conn);
  }
  clearTimeout(waiting);
  await conn.schema
    .createTable('tollgate_migrations')
    .ifNotExists()
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('applied_at', 'text', (c) => c.notNull())
    .execute();
  const rows = await conn.selectFrom('tollgate_migrations').select('id').execute();
  const applied = new Set(rows.map((r: { id: number }) => Number(r.id)));
  const pending = [...migrations].sort((a, b) => a.id - b.id).filter((m) => !applied.has(m.id));
  for (const m of pending) {
    await m.up(conn, dialect);
    await conn
      .insertInto('tollgate_migrations')
      .values({ id: m.id, name: m.name, applied_at: new Date().toISOString() })
      .execute();
  }
  return pending.map((m) => m.name);
}
