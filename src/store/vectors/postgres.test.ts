// The PostgreSQL semantic index when its connection goes silent, stalls or is slow (through a TCP proxy), and on a
// table made before entries had keys.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql, type Kysely } from 'kysely';
import { CACHE_PURGE_TIMEOUT_MS, CacheStoreUnavailableError } from '../caches/cache-store.js';
import type { Database } from '../database.js';
import { openDatabase } from '../open-database.js';
import { TcpProxy } from '../test-tcp-proxy.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../test-databases.js';
import { PostgresVectorIndex, deleteScopesUnder } from './postgres.js';
import { encodeEntry, normalize } from './vector-index.js';

const postgres = DATABASE_BACKENDS.find((b) => b.name === 'postgres')!;
const east = normalize([1, 0, 0, 0]);
const text = (b: Buffer | undefined) => b?.toString();

/**
 * One schema for the suite; each test gets its own proxy and, through it, a database with a pool of one connection,
 * whose builder with the statement deadline the index is given (as the gateway gives it).
 */
let target: TestDatabase;
let direct: Database;
before(async () => {
  if (postgres.skip) return;
  target = await postgres.create();
  direct = await target.open({ listen: false });
});
after(async () => {
  await direct?.close();
  await target?.dispose();
});

async function throughProxy(run: (db: Kysely<any>, proxy: TcpProxy) => Promise<void>): Promise<void> {
  const proxy = await TcpProxy.for(target.url, 5432);
  const db = await openDatabase(proxy.proxied(target.url), { schema: target.schema, poolSize: 1, listen: false });
  try {
    await run(db.boundedKysely, proxy);
  } finally {
    await proxy.close();
    await db.close();
  }
}

describe('PostgreSQL semantic index deadlines', { skip: postgres.skip, timeout: 30_000 }, () => {
  test('a lookup on a connection gone silent is a miss within its deadline, and that connection is not handed out again', async () => {
    await throughProxy(async (db, proxy) => {
      const index = new PostgresVectorIndex({ db, scopePrefix: 'silent:', commandTimeoutMs: 200 });
      await index.add('s', 'k', east, Buffer.from('answer'), 60_000);
      proxy.freezeOpen();
      const started = performance.now();
      // Before: no answer, ever (the pool's connection waited for a reply that could not come).
      await assert.rejects(Promise.resolve(index.search('s', east, 0.5)), CacheStoreUnavailableError);
      assert.ok(performance.now() - started < 1000, 'a miss within the deadline');
      // The silent connection is destroyed once its statement is given up for dead; the pool's one connection is then
      // a new one, which works. Kept (or returned to the pool), it would have held every later lookup.
      let found;
      for (const until = Date.now() + 10_000; !found && Date.now() < until; await sleep(100)) found = await index.search('s', east, 0.5).catch(() => undefined);
      assert.equal(text(found?.value), 'answer');
    });
  });

  test('a slow answer costs the lookup, not the connection: it goes back to the pool', async () => {
    await throughProxy(async (db, proxy) => {
      const index = new PostgresVectorIndex({ db, scopePrefix: 'slow:', commandTimeoutMs: 200 });
      await index.add('s', 'k', east, Buffer.from('answer'), 60_000);
      const backend = async () => (await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(db)).rows[0].pid;
      const pid = await backend();
      proxy.delay(300);
      await assert.rejects(Promise.resolve(index.search('s', east, 0.5)), CacheStoreUnavailableError);
      proxy.delay(0);
      assert.equal(await backend(), pid, 'the same connection, once its late answer came');
    });
  });

  test('a store given up while it waited for a connection never runs', async () => {
    await throughProxy(async (db, proxy) => {
      const index = new PostgresVectorIndex({ db, scopePrefix: 'waited:', commandTimeoutMs: 200 });
      await index.add('s', 'k', east, Buffer.from('answer'), 60_000);
      // A slow lookup holds the pool's one connection while the store waits for it, until both have given up.
      proxy.delay(400);
      const north = normalize([0, 1, 0, 0]);
      const given = [index.search('s', east, 0.5), index.add('s', 'late', north, Buffer.from('late'), 60_000)];
      for (const op of given) await assert.rejects(Promise.resolve(op), CacheStoreUnavailableError);
      proxy.delay(0);
      // Queued behind the store (the pool serves its waiters in turn): answered once the store has had the connection.
      await sql`SELECT 1`.execute(db);
      // Before: the store ran once it got the connection, its caller long told it had failed.
      assert.equal(await index.search('s', north, 0.99), undefined);
    });
  });

  test('a purge while PostgreSQL stalls is CacheStoreUnavailableError (a 503) within the purge deadline', async () => {
    await throughProxy(async (db, proxy) => {
      const index = new PostgresVectorIndex({ db, scopePrefix: 'purge:' });
      await index.add('s', 'k', east, Buffer.from('answer'), 60_000);
      proxy.stall();
      const started = performance.now();
      // Before: no answer until the stall ended.
      await assert.rejects(deleteScopesUnder(db, 'purge:'), CacheStoreUnavailableError);
      assert.ok(performance.now() - started < CACHE_PURGE_TIMEOUT_MS + 1000);
      proxy.unstall();
    });
  });
});

describe('PostgreSQL semantic index table', { skip: postgres.skip }, () => {
  test('a table made before entries had keys gets its key column; its rows still answer', async () => {
    const old = await postgres.create();
    const db = await old.open({ listen: false });
    try {
      await sql`CREATE UNLOGGED TABLE tollgate_semantic_cache (
        id bigserial PRIMARY KEY, scope text NOT NULL, entry bytea NOT NULL, expires_at double precision NOT NULL)`.execute(db.kysely);
      await sql`INSERT INTO tollgate_semantic_cache (scope, entry, expires_at) VALUES ('s', ${encodeEntry(east, Buffer.from('old'), Date.now() + 60_000)}, ${Date.now() + 60_000})`.execute(db.kysely);
      const index = new PostgresVectorIndex({ db: db.boundedKysely, commandTimeoutMs: 1000 });
      assert.equal(text((await index.search('s', east, 0.5))?.value), 'old');
      const north = normalize([0, 1, 0, 0]);
      for (const answer of ['one', 'two']) await index.add('s', 'k', north, Buffer.from(answer), 60_000);
      assert.equal(text((await index.search('s', north, 0.5))?.value), 'two');
      const rows = await sql<{ n: string }>`SELECT count(*) AS n FROM tollgate_semantic_cache WHERE scope = 's'`.execute(db.kysely);
      assert.equal(Number(rows.rows[0].n), 2, 'the old row and one for the key');
    } finally {
      await db.close();
      await old.dispose();
    }
  });
});
