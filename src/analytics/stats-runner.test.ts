// Stats queries on a SQLite file run in a thread of their own, with their own connection; in memory, in process. On
// PostgreSQL a few at a time share the gateway's pool, each under a statement timeout.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { QueueFullError } from '../lib/concurrency-limit.js';
import { measureStalls } from '../lib/test-stall.js';
import { withTimeout } from '../lib/with-timeout.js';
import { AnalyticsRecords, type Database } from '../store/index.js';
import { openDatabase } from '../store/open-database.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../store/test-databases.js';
import { recordRow } from './record.js';
import type { StatsQuery } from './stats-query.js';
import { openStatsRunner, StatsTimeoutError, type StatsRunner } from './stats-runner.js';
import { lockRecordsTable, sampleRecord } from './test-records.js';

const T0 = Date.UTC(2025, 0, 15);
const DAY = 86_400_000;
const query = (q: Partial<StatsQuery> = {}): StatsQuery => ({ from: T0, to: T0 + DAY, bucket: '1h', offsetMinutes: 0, groupBy: [], metrics: ['requests'], filters: [], format: 'json', ...q });
/** `n` records spread over the day T0, by 20 apps; `first` numbers their request ids. */
const rows = (n: number, first = 0) =>
  Array.from({ length: n }, (_, i) => recordRow(sampleRecord(first + i, { time: T0 + Math.floor((i / n) * DAY), appId: `id-${i % 20}`, appName: `app-${i % 20}`, latencyMs: i % 997 }))!);

function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)));
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

describe('stats runner on a SQLite file', () => {
  let target: TestDatabase;
  let db: Database;
  let runner: StatsRunner;

  before(async () => {
    target = await DATABASE_BACKENDS[0].create();
    db = await target.open();
    runner = openStatsRunner(db);
  });
  after(async () => {
    await runner?.close();
    await db?.close();
    await target?.dispose();
  });

  test('answers from its own connection while the gateway is inside a write transaction', async () => {
    await new AnalyticsRecords(db).insert(rows(10));
    await runner.run(query()); // the runner has asked the connection which file it has open
    await db.kysely.transaction().execute(async (trx) => {
      await new AnalyticsRecords({ dialect: 'sqlite', kysely: trx }).insert(rows(5, 10));
      // On the gateway's connection, the query would wait for this transaction, which waits for the query.
      const result = await within(10_000, runner.run(query()));
      assert.ok('rows' in result);
      assert.equal(result.rows.reduce((n, r) => n + (r.requests as number), 0), 10, 'sees only what was committed');
    });
  });

  test('leaves the event loop free during a long query (a day of 200,000 records by app, p99)', async () => {
    const records = new AnalyticsRecords(db);
    const all = rows(200_000);
    for (let i = 0; i < all.length; i += 1024) await records.insert(all.slice(i, i + 1024), 1024, { onEventLoop: false });
    await runner.run(query({ to: T0 + 60_000 })); // the thread is up and its connection open
    const { result, longest, took } = await measureStalls(() => runner.run(query({ groupBy: ['app'], metrics: ['requests', 'latency_p99'] })));
    assert.ok('rows' in result && result.rows.length === 24 * 20, 'one row per hour and app');
    assert.ok(longest < Math.max(100, took / 4), `the event loop stalled ${Math.round(longest)} ms of a ${Math.round(took)} ms query`);
  });

  test('a thread closed when idle gives way to a new one', async () => {
    await runner.close();
    const result = await runner.run(query({ to: T0 + 60_000 }));
    assert.ok('rows' in result);
  });
});

test('an in-memory database, which no other thread can open, is queried in process', async () => {
  const db = await openDatabase('sqlite::memory:');
  const runner = openStatsRunner(db);
  try {
    await new AnalyticsRecords(db).insert(rows(3));
    assert.deepEqual(await runner.run(query({ bucket: '1d' })), { rows: [{ bucket_start: new Date(T0).toISOString(), requests: 3 }] });
  } finally {
    await runner.close();
    await db.close();
  }
});

describe('stats runner on PostgreSQL', { skip: DATABASE_BACKENDS[1].skip }, () => {
  let target: TestDatabase;
  let db: Database;
  /** A second connection, whose transaction locks the records table: the queries then wait as long as it likes. */
  let locker: Database;

  before(async () => {
    target = await DATABASE_BACKENDS[1].create();
    db = await target.open({ listen: false });
    locker = await target.open({ listen: false });
    await new AnalyticsRecords(db).insert(rows(10));
  });
  after(async () => {
    await locker?.close();
    await db?.close();
    await target?.dispose();
  });

  /** Runs `during` while the records table is locked (for at most `ms`). */
  async function whileLocked(ms: number, during: () => Promise<void>): Promise<void> {
    const unlock = await lockRecordsTable(locker, ms);
    try {
      await during();
    } finally {
      await unlock();
    }
  }

  /** The stats queries the server is running now (waiting for the lock), from the gateway's pool. */
  async function runningQueries(): Promise<number> {
    const { rows: found } = await sql<{ n: string }>`select count(*) as n from pg_stat_activity
      where application_name = 'tollgate' and state = 'active' and query like '%bucket_start%' and pid <> pg_backend_pid()`.execute(locker.kysely);
    return Number(found[0].n);
  }

  test('two run at once and eight wait, so the pool keeps connections for everyone else; more are refused at once', async () => {
    const runner = openStatsRunner(db);
    let calls: Promise<unknown>[] = [];
    try {
      await whileLocked(20_000, async () => {
        calls = Array.from({ length: 12 }, () => runner.run(query()).catch((err: unknown) => err));
        const refused = await withTimeout(Promise.all(calls.slice(10)), 1000, 'the refusals');
        assert.ok(refused.every((err) => err instanceof QueueFullError), 'the 11th and 12th are refused without waiting');
        // Ten connections in the pool: had every query taken one, this would wait for one (and fail after 5 s).
        await withTimeout(sql`select 1`.execute(db.kysely), 2000, 'a query beside the stats queries');
        for (let waited = 0; (await runningQueries()) < 2 && waited < 5000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
        assert.equal(await runningQueries(), 2);
      });
      // Unlocked: the ten answer, two at a time.
      for (const answer of await Promise.all(calls.slice(0, 10))) assert.ok(answer !== null && typeof answer === 'object' && 'rows' in answer, String(answer));
    } finally {
      await runner.close();
    }
  });

  test('a query past its statement timeout is stopped by the server and refused with StatsTimeoutError', async () => {
    const runner = openStatsRunner(db, { statementTimeoutMs: 300 });
    await whileLocked(5000, async () => {
      await assert.rejects(runner.run(query()), (err) => err instanceof StatsTimeoutError && /longer than 0.3 s/.test(err.message));
      assert.equal(await runningQueries(), 0, 'the server stopped it: it holds no connection');
    });
    // The setting ended with the query's transaction: a connection back in the pool has its own.
    const { rows: setting } = await sql<{ statement_timeout: string }>`show statement_timeout`.execute(db.kysely);
    assert.equal(setting[0].statement_timeout, '0');
    assert.ok('rows' in (await runner.run(query())));
  });
});
