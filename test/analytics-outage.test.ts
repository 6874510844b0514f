// PostgreSQL outages under load, through a TCP proxy in front of the real server: cut (connections reset, refused)
// and stalled (connections hang past the write timeout); afterwards every record is stored exactly once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { AnalyticsPipeline } from '../src/analytics/pipeline.js';
import { capturingLogger, sampleRecord, tempSpoolDirectory, testSettings } from '../src/analytics/test-records.js';
import { AnalyticsRecords, openDatabase, type Database } from '../src/store/index.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../src/store/test-databases.js';
import { TcpProxy } from '../src/store/test-tcp-proxy.js';

const postgres = DATABASE_BACKENDS.find((b) => b.name === 'postgres')!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('analytics through PostgreSQL outages', { skip: postgres.skip }, () => {
  let target: TestDatabase;
  let direct: Database;
  let proxied: Database;
  let proxy: TcpProxy;

  before(async () => {
    target = await postgres.create();
    direct = await target.open({ listen: false });
    proxy = await TcpProxy.for(target.url, 5432);
    proxied = await openDatabase(proxy.proxied(target.url), { schema: target.schema, listen: false });
  });
  after(async () => {
    await proxied?.close();
    await proxy?.close();
    await direct?.close();
    await target?.dispose();
  });

  async function storedCount(tag: string): Promise<{ n: number; distinct: number }> {
    const [row] = await new AnalyticsRecords(direct).kysely
      .selectFrom('analytics_records')
      .select((eb) => [eb.fn.countAll<string>().as('n'), eb.fn.count<string>('request_id').distinct().as('distinct')])
      .where('request_id', 'like', `${tag}-%`)
      .execute();
    return { n: Number(row.n), distinct: Number(row.distinct) };
  }

  /** Records `total` records in bursts every 10 ms, running `during` meanwhile; resolves when both are done. */
  async function load(pipeline: AnalyticsPipeline, tag: string, total: number, during: () => Promise<void>): Promise<void> {
    let n = 0;
    const writing = (async () => {
      while (n < total) {
        for (let i = 0; i < 30 && n < total; i++, n++) pipeline.record(sampleRecord(n, { requestId: `${tag}-${n}` }));
        await sleep(10);
      }
    })();
    await Promise.all([writing, during()]);
  }

  async function drained(pipeline: AnalyticsPipeline, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (pipeline.spooledRecords > 0 && Date.now() < deadline) await sleep(25);
    assert.equal(pipeline.spooledRecords, 0, 'the spool drained after the database came back');
  }

  test('connections reset and refused mid-load: afterwards the counts match exactly', { timeout: 40_000 }, async () => {
    const { logger, lines } = capturingLogger();
    const pipeline = new AnalyticsPipeline({ db: proxied, settings: testSettings(tempSpoolDirectory(), { flushInterval: '20ms', batchSize: 100 }), registry: new Registry(), logger });
    pipeline.start();
    let lagDuringOutage = 0;
    await load(pipeline, 'cut', 3000, async () => {
      await sleep(300);
      await proxy.cut();
      await sleep(1200);
      lagDuringOutage = pipeline.lagSeconds;
      await proxy.restore();
    });
    assert.ok(lagDuringOutage > 0.5, `lag during the outage was ${lagDuringOutage}`);
    await drained(pipeline, 30_000);
    assert.deepEqual(await storedCount('cut'), { n: 3000, distinct: 3000 });
    assert.ok(lines.some((l) => l.msg === 'cannot store analytics records; they wait in the spool'));
    assert.ok(lines.some((l) => l.msg === 'analytics records are being stored again'));
    assert.ok(!lines.some((l) => l.msg === 'analytics records dropped'));
    await pipeline.close();
  });

  test('connections hanging past the write timeout: retried, and the late commits are not duplicated', { timeout: 40_000 }, async () => {
    const { logger, lines } = capturingLogger();
    const pipeline = new AnalyticsPipeline({
      db: proxied,
      settings: testSettings(tempSpoolDirectory(), { flushInterval: '20ms', batchSize: 100, writeTimeout: '300ms' }),
      registry: new Registry(),
      logger,
    });
    pipeline.start();
    await load(pipeline, 'stall', 2000, async () => {
      await sleep(300);
      proxy.stall();
      await sleep(1500);
      proxy.unstall();
    });
    await drained(pipeline, 30_000);
    assert.deepEqual(await storedCount('stall'), { n: 2000, distinct: 2000 });
    const timedOut = lines.find((l) => l.msg === 'cannot store analytics records; they wait in the spool');
    assert.match(String((timedOut?.err as { message?: string } | undefined)?.message), /did not finish within 300 ms/);
    await pipeline.close();
  });

  test('the writer thread\'s connection going silent for good: the retry after the write timeout goes over a new one', { timeout: 60_000 }, async () => {
    // A proxy of its own: the connections it silences stay silent, and the other tests' must not be among them.
    const own = await TcpProxy.for(target.url, 5432);
    const { logger, lines } = capturingLogger();
    const pipeline = new AnalyticsPipeline({
      db: proxied,
      databaseUrl: own.proxied(target.url),
      databaseSchema: target.schema,
      settings: testSettings(tempSpoolDirectory(), { flushInterval: '20ms', writeTimeout: '500ms' }),
      registry: new Registry(),
      logger,
    });
    try {
      pipeline.start();
      for (let i = 0; i < 100; i++) pipeline.record(sampleRecord(i, { requestId: `frozen-${i}` }));
      await drained(pipeline, 20_000);
      // What a NAT or load balancer does when it drops an idle flow: the thread's open connection hears nothing more.
      own.freezeOpen();
      for (let i = 100; i < 200; i++) pipeline.record(sampleRecord(i, { requestId: `frozen-${i}` }));
      // Before, every retry queued in the thread behind the insert that hung, and nothing was stored until a restart.
      await drained(pipeline, 20_000);
      assert.deepEqual(await storedCount('frozen'), { n: 200, distinct: 200 });
      assert.ok(lines.some((l) => /an analytics insert did not finish within 500 ms/.test(String((l.err as { message?: string } | undefined)?.message))));
    } finally {
      await pipeline.close();
      await own.close();
    }
  });
});
