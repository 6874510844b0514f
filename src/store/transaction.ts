// Runs a function inside one transaction on one connection, with the BEGIN each dialect needs.
import { setTimeout as sleep } from 'node:timers/promises';
import { sql, type Kysely } from 'kysely';
import type { DialectName } from './database-url.js';
import { BUSY_TIMEOUT_MS } from './sqlite-connection.js';

export type TransactionMode = 'write' | 'snapshot';

/**
 * PostgreSQL, in every transaction: a lock waited for this long fails (55P03, a 503 on the admin API). A session holding
 * a lock (an apply's, a key's row) whose replica went silent would otherwise hold up the other replicas' writes of the
 * same objects until IDLE_IN_TRANSACTION_TIMEOUT_MS ends it. Under the store's statement deadline
 * (postgres-connection.ts), so a lock wait ends with PostgreSQL's answer rather than with the connection given up.
 */
export const LOCK_TIMEOUT_MS = 3000;

/**
 * PostgreSQL, in every transaction: one that sends nothing for this long is ended by the server, rolled back and its
 * locks let go. Its replica went silent, or gave the connection up where the server cannot see it: such a session
 * lived as long as the server's TCP keepalive, two hours by default. tollgate sends a transaction's statements back to
 * back; the longest pause between them is an apply compiling the policies it would leave.
 */
export const IDLE_IN_TRANSACTION_TIMEOUT_MS = 10_000;

/**
 * Set with the BEGIN, in the same round trip, and for the transaction alone (SET LOCAL): as start-up options, a
 * connection pooler in front of PostgreSQL (PgBouncer) refuses the connection, and in its transaction mode a session's
 * settings would reach other clients.
 */
const PG_LIMITS = `set local lock_timeout = ${LOCK_TIMEOUT_MS}; set local idle_in_transaction_session_timeout = ${IDLE_IN_TRANSACTION_TIMEOUT_MS}`;

const BEGIN: Record<DialectName, Record<TransactionMode, string>> = {
  // IMMEDIATE takes the write lock up front: a deferred transaction that reads and then writes fails with
  // SQLITE_BUSY (without waiting) when another process committed in between.
  sqlite: { write: 'begin immediate', snapshot: 'begin' },
  postgres: { write: `begin; ${PG_LIMITS}`, snapshot: `begin isolation level repeatable read read only; ${PG_LIMITS}` },
};

/**
 * SQLite: BEGIN IMMEDIATE with no busy timeout; false when another process holds the write lock (SQLITE_BUSY). The
 * driver's busy timeout waited synchronously, 5 s per write, holding the whole event loop (data plane, health probes,
 * a KVM put's deadline) while another process on the file held its lock. Statements inside the transaction keep the
 * timeout: with the write lock taken, in WAL mode nothing in it waits for another process.
 */
async function tryBeginImmediate(conn: Kysely<any>): Promise<boolean> {
  await sql.raw('pragma busy_timeout = 0').execute(conn);
  try {
    await sql.raw('begin immediate').execute(conn);
    return true;
  } catch (err) {
    if ((err as { code?: unknown }).code === 'SQLITE_BUSY') return false;
    throw err;
  } finally {
    await sql.raw(`pragma busy_timeout = ${BUSY_TIMEOUT_MS}`).execute(conn);
  }
}

export interface TransactionOptions {
  /** How long a write waits for another process's write lock on a SQLite file (default LOCK_TIMEOUT_MS, as PostgreSQL's lock waits). */
  lockWaitMs?: number;
  /** Its caller stopped waiting: a write still waiting for the lock stops trying (with the signal's reason). */
  signal?: AbortSignal;
}

const BUSY = Symbol('busy');

export async function inTransaction<DB, T>(
  db: Kysely<DB>,
  dialect: DialectName,
  mode: TransactionMode,
  fn: (conn: Kysely<DB>) => Promise<T>,
  { lockWaitMs = LOCK_TIMEOUT_MS, signal }: TransactionOptions = {},
): Promise<T> {
  if (dialect !== 'sqlite' || mode !== 'write') return (await run(db, fn, (conn) => sql.raw(BEGIN[dialect][mode]).execute(conn).then(() => true))) as T;
  // Another process's write lock is waited for on the event loop's timers, every 2-50 ms, with the connection let go
  // in between: this process's reads (a token looked up, the change poller) go on meanwhile. Then SQLITE_BUSY: a 503.
  const deadline = performance.now() + lockWaitMs;
  for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
    signal?.throwIfAborted();
    const outcome = await run(db, fn, tryBeginImmediate);
    if (outcome !== BUSY) return outcome;
    if (performance.now() + delay > deadline) throw Object.assign(new Error('database is locked (another process holds its write lock)'), { code: 'SQLITE_BUSY' });
    await sleep(delay);
  }
}

/** One transaction on one connection, begun by `begin` (BUSY when it could not take the lock: nothing was begun). */
async function run<DB, T>(db: Kysely<DB>, fn: (conn: Kysely<DB>) => Promise<T>, begin: (conn: Kysely<DB>) => Promise<boolean>): Promise<T | typeof BUSY> {
  return db.connection().execute(async (conn) => {
    if (!(await begin(conn))) return BUSY;
    let result: T;
    try {
      result = await fn(conn);
    } catch (err) {
      await sql`rollback`.execute(conn).catch(() => {});
      throw err;
    }
    // Nothing else may run between fn and COMMIT: a failure after fn returned is one whose outcome is unknown (the
    // server may have committed before the answer was lost), which Session.transaction tells its listeners about.
    await sql`commit`.execute(conn);
    return result;
  });
}
