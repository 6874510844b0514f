// openDatabase(url): connect to SQLite or PostgreSQL, migrate, start listening for other replicas' changes.
import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { silentLogger, type Logger } from '../lib/logger.js';
import { pathNamed } from '../lib/path-named.js';
import { ChangeFeed } from './change-feed.js';
import { checkSchemaName, DEFAULT_DATABASE_URL, parseDatabaseUrl, type DatabaseTarget } from './database-url.js';
import { DatabaseConfigError, DatabaseOpenError, redactUrl, StoreError } from './errors.js';
import { Database } from './database.js';
import { migrate } from './migrate.js';
import { PgChangeListener } from './pg-change-listener.js';
import { clientConfig, openPostgresStore } from './postgres-connection.js';
import type { Tables } from './schema.js';
import { Session } from './session.js';
import { SqliteChangePoller } from './sqlite-change-poller.js';
import { inTransaction } from './transaction.js';
import { openSqlite } from './sqlite-connection.js';

export interface OpenDatabaseOptions {
  /** PostgreSQL only: work in this schema (created if missing), e.g. a fresh one per test file. */
  schema?: string;
  /** Actor recorded in audit rows unless a view says otherwise (default `system`). */
  actor?: string;
  logger?: Logger;
  /** PostgreSQL pool size (default 10). */
  poolSize?: number;
  /** PostgreSQL: LISTEN for other replicas' changes (default true; costs one connection). */
  listen?: boolean;
  /** PostgreSQL: how often the LISTEN connection is checked for life (default 5 s; tests use less). */
  listenHeartbeatMs?: number;
  /** A SQLite file: how often other processes' changes are looked for (default POLL_MS). */
  changePollMs?: number;
}

/**
 * Opens `sqlite:FILE` (`sqlite::memory:` for a private in-memory database) or `postgres://...`, and applies
 * pending migrations before returning. Keep one Database per SQLite file per process: better-sqlite3 blocks the
 * thread while waiting for a lock, so a second in-process connection waiting on the first would stall both.
 * @example const db = await openDatabase('sqlite:./tollgate.db'); const dev = await db.developers.create({ email });
 */
export async function openDatabase(url: string = DEFAULT_DATABASE_URL, opts: OpenDatabaseOptions = {}): Promise<Database> {
  const target = parseDatabaseUrl(url);
  try {
    return await open(target, opts);
  } catch (err) {
    // Named, so `serve` can say which flag is wrong in one line (exit code 2) rather than print a driver's stack.
    if (err instanceof StoreError) throw err;
    // A relative file (the default is one) with where it leads from the working directory.
    const named = target.dialect === 'sqlite' && target.file !== ':memory:' ? `sqlite:${pathNamed(target.file)}` : redactUrl(url);
    throw new DatabaseOpenError(`cannot open the database ${named}: ${(err as Error).message}`, { cause: err });
  }
}

async function open(target: DatabaseTarget, opts: OpenDatabaseOptions): Promise<Database> {
  const logger = opts.logger ?? silentLogger;
  const actor = opts.actor ?? 'system';
  const instanceId = randomUUID();
  const feed = new ChangeFeed(logger);

  if (target.dialect === 'sqlite') {
    const db = openSqlite(target.file);
    await orDestroy(db, () => migrate(db, 'sqlite'));
    await orDestroy(db, () => proveWritable(db));
    // Only a file can be shared: ':memory:' is this connection's alone.
    const shared = target.file !== ':memory:';
    const session = new Session({ db, dialect: 'sqlite', feed, instanceId, schema: 'main', logChanges: shared }, actor);
    const poller = shared ? new SqliteChangePoller(db, instanceId, (e) => feed.publish(e), logger, opts.changePollMs) : undefined;
    if (poller) await orDestroy(db, () => poller.start());
    return new Database(session, { listener: poller, ownsSchema: false });
  }

  const named = opts.schema ?? target.schema;
  const schema = named === undefined ? undefined : checkSchemaName(named);
  const settings = { url: target.url, schema, poolSize: opts.poolSize };
  // Migrations may rightly run long: they go without the store's statement deadline.
  const { kysely, store } = openPostgresStore(settings, logger);
  if (opts.schema === undefined && schema !== undefined) await orDestroy(kysely, () => refuseSplitFromPublic(kysely, schema));
  await orDestroy(kysely, () => migrate(kysely, 'postgres', schema, undefined, logger));
  const core = { db: store, dialect: 'postgres' as const, feed, instanceId, schema: schema ?? 'public' };
  const listener =
    opts.listen === false
      ? undefined
      : new PgChangeListener(clientConfig(settings, `tollgate-listen:${core.schema}`), core, (e) => feed.publish(e), logger, opts.listenHeartbeatMs);
  if (listener) await orDestroy(kysely, () => listener.start());
  return new Database(new Session(core, actor), { listener, ownsSchema: schema !== undefined, kysely });
}

/**
 * Releases before 2026-11-29 ignored `?schema=` in the URL and kept everything in `public`: the same URL given to this
 * one would start an empty gateway in a new schema, every key refused, and in a rolling update split old replicas from
 * new ones. A schema that does not exist yet, beside a `public` that holds tollgate's tables, is refused; creating the
 * schema first says a new gateway is meant.
 */
async function refuseSplitFromPublic(db: Kysely<Tables>, schema: string): Promise<void> {
  const { rows } = await sql<{ present: boolean; used: boolean }>`select exists (select 1 from pg_namespace where nspname = ${schema}) as present,
    to_regclass('public.tollgate_migrations') is not null as used`.execute(db);
  if (rows[0]?.present || !rows[0]?.used) return;
  throw new DatabaseConfigError(
    `the database URL names schema "${schema}", which does not exist, while schema public holds tollgate's tables: releases before ` +
      `2026-11-29 ignored ?schema= and kept everything in public. To go on with that data, remove ?schema= from the URL (or move ` +
      `public's tables into "${schema}"); to start a new, empty gateway in "${schema}", create the schema first (CREATE SCHEMA ${schema})`,
  );
}

/**
 * SQLite opens a file this process may not write (owned by another user after a UID change or a restore as root)
 * read-only, without a word, and on an up-to-date schema nothing at start writes: the gateway said it was serving,
 * then answered every admin write 500 and stored no usage record. A write rolled back tells now (SQLITE_READONLY),
 * and the start is refused as a bad --db. BEGIN IMMEDIATE alone does not: it succeeds on a read-only file.
 */
async function proveWritable(db: Kysely<Tables>): Promise<void> {
  const probed = new Error('write probe');
  try {
    // As migrate does, the write lock of another process starting or writing is waited for, however long it is held.
    await inTransaction(db, 'sqlite', 'write', async (conn) => {
      await sql`insert into tollgate_migrations (id, name, applied_at) values (-1, 'write probe', '')`.execute(conn);
      throw probed;
    }, { lockWaitMs: Infinity });
  } catch (err) {
    if (err !== probed) throw err;
  }
}

/** A half-opened database must not leave a pool behind. */
async function orDestroy(db: Kysely<Tables>, step: () => Promise<unknown>): Promise<void> {
  try {
    await step();
  } catch (err) {
    await db.destroy();
    throw err;
  }
}
