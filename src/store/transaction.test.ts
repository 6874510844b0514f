import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, type Kysely } from 'kysely';
import { silentLogger } from '../lib/logger.js';
import { openPostgres } from './postgres-connection.js';
import { IDLE_IN_TRANSACTION_TIMEOUT_MS, inTransaction, LOCK_TIMEOUT_MS } from './transaction.js';

const DATABASE_URL = process.env.DATABASE_URL;
const needsPostgres = { skip: DATABASE_URL ? false : 'DATABASE_URL is not set' };

const setting = async (conn: Kysely<any>, name: string): Promise<string> =>
  (await sql<{ v: string }>`select current_setting(${name}) as v`.execute(conn)).rows[0]!.v;

test('a PostgreSQL transaction gives up lock waits and ends when left idle, whatever the connection; outside it nothing changes', needsPostgres, async () => {
  const db = openPostgres({ url: DATABASE_URL! }, silentLogger);
  try {
    for (const mode of ['write', 'snapshot'] as const) {
      const inside = await inTransaction(db, 'postgres', mode, async (conn) => [await setting(conn, 'lock_timeout'), await setting(conn, 'idle_in_transaction_session_timeout')]);
      // Before, neither was set: a lock held by a session gone silent held every other replica's apply for hours.
      assert.deepEqual(inside, [`${LOCK_TIMEOUT_MS / 1000}s`, `${IDLE_IN_TRANSACTION_TIMEOUT_MS / 1000}s`], mode);
    }
    // SET LOCAL: a connection pooler's other clients, or a statement of this pool outside a transaction, see the server's.
    assert.equal(await db.connection().execute((conn) => setting(conn, 'lock_timeout')), '0');
  } finally {
    await db.destroy();
  }
});

test('a lock wait inside a PostgreSQL transaction fails with lock_not_available after LOCK_TIMEOUT_MS', { ...needsPostgres, timeout: 20_000 }, async () => {
  const db = openPostgres({ url: DATABASE_URL!, poolSize: 2 }, silentLogger);
  const lock = sql`select pg_advisory_xact_lock(hashtext('tollgate:transaction-test'), ${process.pid})`;
  let release!: () => void;
  let locked!: () => void;
  const held = new Promise<void>((r) => (locked = r));
  const holding = inTransaction(db, 'postgres', 'write', async (conn) => {
    await lock.execute(conn);
    locked();
    await new Promise<void>((r) => (release = r));
  });
  try {
    await held;
    const started = Date.now();
    await assert.rejects(inTransaction(db, 'postgres', 'write', (conn) => lock.execute(conn)), { code: '55P03' });
    assert.ok(Date.now() - started < LOCK_TIMEOUT_MS + 1000, `gave up after ${Date.now() - started} ms`);
  } finally {
    release?.();
    await holding;
    await db.destroy();
  }
});
