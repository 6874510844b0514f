// Runs a function inside one transaction on one connection, with the BEGIN each dialect needs.
import { sql, type Kysely } from 'kysely';
import type { DialectName } from './database-url.js';

export type TransactionMode = 'write' | 'snapshot';

const BEGIN: Record<DialectName, Record<TransactionMode, string>> = {
  // IMMEDIATE takes the write lock up front: a deferred transaction that reads and then writes fails with
  // SQLITE_BUSY (without waiting) when another process committed in between.
  sqlite: { write: 'begin immediate', snapshot: 'begin' },
  postgres: { write: 'begin', snapshot: 'begin isolation level repeatable read read only' },
};

export async function inTransaction<DB, T>(
  db: Kysely<DB>,
  dialect: DialectName,
  mode: TransactionMode,
  fn: (conn: Kysely<DB>) => Promise<T>,
): Promise<T> {
  return db.connection().execute(async (conn) => {
    await sql.raw(BEGIN[dialect][mode]).execute(conn);
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
