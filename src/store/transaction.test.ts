import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, type Kysely } from 'kysely';
import { silentLogger } from '../lib/logger.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { measureStalls } from '../lib/test-stall.js';
import { isDatabaseUnavailable } from './errors.js';
import { openDatabase } from './open-database.js';
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

/** How long the event loop was held (measureStalls) while `during` ran, and how it settled. */
async function loopHeldDuring<T>(during: Promise<T>): Promise<{ result: PromiseSettledResult<T>; heldMs: number }> {
  const { result, longest } = await measureStalls(() => Promise.allSettled([during]).then(([r]) => r));
  return { result, heldMs: longest };
}

test("a SQLite write waits for another connection's write lock without holding the event loop, then proceeds or gives up after LOCK_TIMEOUT_MS", { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-busy-'));
  const file = join(dir, 't.db');
  const db = await openDatabase(`sqlite:${file}`);
  // Another process's connection, as a replica on the same file or a sqlite3 shell holds it.
  const other = new SqliteDatabase(file);
  try {
    other.exec('begin immediate');
    setTimeout(() => other.exec('commit'), 400);
    const waited = await loopHeldDuring(db.developers.create({ email: 'waited@example.com' }));
    assert.equal(waited.result.status, 'fulfilled', String((waited.result as PromiseRejectedResult).reason));
    // Before, the driver waited synchronously: the timer releasing the lock could not even fire within the 5 s busy timeout.
    assert.ok(waited.heldMs < 300, `the event loop was held ${waited.heldMs.toFixed(0)} ms`);

    // Reads go on while a write waits for the lock: the connection is let go between its tries.
    other.exec('begin immediate');
    const waiting = db.developers.create({ email: 'behind-a-read@example.com' });
    const readStarted = performance.now();
    const read = await loopHeldDuring(db.developers.list());
    const readMs = performance.now() - readStarted;
    assert.equal(read.result.status, 'fulfilled');
    // Before, the waiting write held the connection until it gave up (LOCK_TIMEOUT_MS), and the read waited behind it.
    assert.ok(readMs < 1000, `the read waited ${readMs.toFixed(0)} ms`);
    other.exec('commit');
    await waiting;
    await db.developers.delete('behind-a-read@example.com');

    other.exec('begin immediate');
    const started = performance.now();
    const refused = await loopHeldDuring(db.developers.create({ email: 'refused@example.com' }));
    const tookMs = performance.now() - started;
    other.exec('commit');
    assert.equal(refused.result.status, 'rejected');
    assert.ok(isDatabaseUnavailable((refused.result as PromiseRejectedResult).reason), String((refused.result as PromiseRejectedResult).reason));
    assert.ok(tookMs >= LOCK_TIMEOUT_MS - 100 && tookMs < LOCK_TIMEOUT_MS + 1500, `refused after ${tookMs.toFixed(0)} ms`);
    assert.ok(refused.heldMs < 300, `the event loop was held ${refused.heldMs.toFixed(0)} ms`);
    assert.deepEqual((await db.developers.list()).items.map((d) => d.email), ['waited@example.com']);
  } finally {
    other.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
