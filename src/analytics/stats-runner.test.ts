// Stats queries on a SQLite file run in a thread of their own, with their own connection; in memory, in process.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AnalyticsRecords, type Database } from '../store/index.js';
import { openDatabase } from '../store/open-database.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../store/test-databases.js';
import { recordRow } from './record.js';
import type { StatsQuery } from './stats-query.js';
import { openStatsRunner, type StatsRunner } from './stats-runner.js';
import { sampleRecord } from './test-records.js';

const T0 = Date.UTC(2025, 0, 15);
const DAY = 86_400_000;
const query = (q: Partial<StatsQuery> = {}): StatsQuery => ({ from: T0, to: T0 + DAY, bucket: '1h', groupBy: [], metrics: ['requests'], filters: [], format: 'json', ...q });
/** `n` records spread over the day T0, by 20 apps; `first` numbers their request ids. */
const rows = (n: number, first = 0) =>
  Array.from({ length: n }, (_, i) => recordRow(sampleRecord(first + i, { time: T0 + Math.floor((i / n) * DAY), appName: `app-${i % 20}`, latencyMs: i % 997 }))!);

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
    let last = performance.now();
    let longest = 0;
    const tick = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
    }, 1);
    const started = performance.now();
    const result = await runner.run(query({ groupBy: ['app'], metrics: ['requests', 'latency_p99'] }));
    const took = performance.now() - started;
    clearInterval(tick);
    longest = Math.max(longest, performance.now() - last); // a loop held to the end never ran the tick after it
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
