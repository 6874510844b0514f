// The analytics pipeline on SQLite and PostgreSQL: exactly-once storage, replay from the spool, segments, disk budget, retention.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, existsSync, mkdirSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { AnalyticsPipeline } from '../src/analytics/pipeline.js';
import { recordRow } from '../src/analytics/record.js';
import { capturingLogger, lockRecordsTable, sampleRecord, storedNumbers, tempSpoolDirectory, testSettings, useRecordsDatabase } from '../src/analytics/test-records.js';
import type { AnalyticsSettings } from '../src/analytics/settings.js';
import { writeCheckpoint } from '../src/analytics/spool-files.js';
import { AnalyticsRecords, type Database } from '../src/store/index.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../src/store/test-databases.js';
import { measureStalls } from '../src/lib/test-stall.js';
import { waitFor } from '../src/sim/testing.js';

/** Records reach the spool at the end of the event-loop turn that recorded them (group commit). */
const endOfTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Stores from the event loop (an in-memory database's way) or from the writer thread with its own connection. */
const WRITERS = [
  { name: 'event loop', thread: false },
  { name: 'writer thread', thread: true },
];

/** A database that cannot be reached: a file in a directory that does not exist, a port nothing listens on. */
function unreachable(backend: string): string {
  return backend === 'sqlite' ? `sqlite:${join(tempSpoolDirectory(), 'missing', 'test.db')}` : 'postgres://postgres@127.0.0.1:9/test';
}

for (const backend of DATABASE_BACKENDS) for (const writer of WRITERS) {
  describe(`analytics pipeline (${backend.name}, ${writer.name})`, { skip: backend.skip }, () => {
    let target: TestDatabase;
    let db: Database;
    let closed: Database;
    let records: AnalyticsRecords;
    let run = 0;

    before(async () => {
      target = await backend.create();
      db = await target.open({ listen: false });
      records = new AnalyticsRecords(db);
      closed = await target.open({ listen: false });
      await closed.close();
    });
    after(async () => {
      await db?.close();
      await target?.dispose();
    });

    /** Request ids are `<tag>-<i>` so each test counts only its own rows in the shared database. */
    const tagged = () => `t${++run}`;
    async function stored(tag: string): Promise<string[]> {
      const rows = await records.kysely.selectFrom('analytics_records').select('request_id').where('request_id', 'like', `${tag}-%`).execute();
      return rows.map((r) => r.request_id).sort();
    }
    function ids(tag: string, n: number): string[] {
      return Array.from({ length: n }, (_, i) => `${tag}-${i}`).sort();
    }
    /** `down`: the database cannot be reached (closed for the event loop, unreachable for the writer thread). */
    function open(settings: AnalyticsSettings, { down = false } = {}, logger = capturingLogger()) {
      const registry = new Registry();
      const databaseUrl = writer.thread ? (down ? unreachable(backend.name) : target.url) : undefined;
      const pipeline = new AnalyticsPipeline({ db: down ? closed : db, databaseUrl, databaseSchema: target.schema, settings, registry, logger: logger.logger });
      return { pipeline, registry, logs: logger.lines };
    }

    test('every recorded request is stored once, with its fields, and the metrics say so', async () => {
      const tag = tagged();
      const { pipeline, registry } = open(testSettings(tempSpoolDirectory(), { flushInterval: '1h' }));
      pipeline.start();
      const first = sampleRecord(0, { requestId: `${tag}-0`, inputTokens: undefined, outputTokens: undefined, cachedTokens: undefined, status: 429, faultCode: 'policies.ratelimit.QuotaViolation' });
      pipeline.record(first);
      for (let i = 1; i < 25; i++) pipeline.record(sampleRecord(i, { requestId: `${tag}-${i}` }));
      assert.equal(pipeline.spooledRecords, 25);
      assert.ok(pipeline.lagSeconds >= 0);
      await pipeline.flush();
      assert.deepEqual(await stored(tag), ids(tag, 25));
      assert.equal(pipeline.spooledRecords, 0);
      assert.equal(pipeline.lagSeconds, 0);

      const row = await records.kysely.selectFrom('analytics_records').selectAll().where('id', '=', first.id).executeTakeFirstOrThrow();
      assert.equal(Number(row.at_ms), first.time);
      assert.equal(row.input_tokens, null, 'unknown usage is NULL, not 0');
      assert.equal(row.status, 429);
      assert.equal(row.fault_code, 'policies.ratelimit.QuotaViolation');
      assert.equal(row.app_name, 'chatbot');
      assert.equal(row.cache_hit, 0);

      const text = await registry.metrics();
      assert.match(text, /tollgate_analytics_records_total\{outcome="spooled"\} 25/);
      assert.match(text, /tollgate_analytics_records_total\{outcome="written"\} 25/);
      assert.match(text, /tollgate_analytics_records_total\{outcome="dropped"\} 0/);
      assert.match(text, /tollgate_analytics_spooled_records 0/);
      assert.match(text, /tollgate_analytics_lag_seconds 0/);
      await pipeline.close();
    });

    test('the timer stores records without flush()', async () => {
      const tag = tagged();
      const { pipeline } = open(testSettings(tempSpoolDirectory()));
      pipeline.start();
      for (let i = 0; i < 10; i++) pipeline.record(sampleRecord(i, { requestId: `${tag}-${i}` }));
      for (let waited = 0; pipeline.spooledRecords > 0 && waited < 5000; waited += 10) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(await stored(tag), ids(tag, 10));
      await pipeline.close();
    });

    test('records wait in the spool while the database fails, and a later process stores them once', async () => {
      const tag = tagged();
      const dir = tempSpoolDirectory();
      const down = open(testSettings(dir), { down: true });
      down.pipeline.start();
      for (let i = 0; i < 40; i++) down.pipeline.record(sampleRecord(i, { requestId: `${tag}-${i}` }));
      await assert.rejects(down.pipeline.flush());
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(down.pipeline.spooledRecords, 40);
      assert.ok(down.pipeline.lagSeconds > 0, 'lag grows while nothing is stored');
      await down.pipeline.close();
      assert.ok(down.logs.some((l) => l.msg === 'cannot store analytics records; they wait in the spool'));
      assert.deepEqual(await stored(tag), []);

      const up = open(testSettings(dir, { flushInterval: '1h' }));
      up.pipeline.start();
      assert.equal(up.pipeline.spooledRecords, 40);
      assert.ok(up.logs.some((l) => l.msg === 'storing analytics records left by an earlier process'));
      await up.pipeline.flush();
      assert.deepEqual(await stored(tag), ids(tag, 40));
      await up.pipeline.close();
    });

    test('a lost checkpoint replays records the database already has, without duplicates', async () => {
      const tag = tagged();
      const dir = tempSpoolDirectory();
      const a = open(testSettings(dir, { flushInterval: '1h' }));
      a.pipeline.start();
      for (let i = 0; i < 30; i++) a.pipeline.record(sampleRecord(i, { requestId: `${tag}-${i}` }));
      await a.pipeline.flush();
      await a.pipeline.close();
      // As if the process died between COMMIT and the checkpoint's rename.
      unlinkSync(join(dir, 'checkpoint.json'));

      const b = open(testSettings(dir, { flushInterval: '1h' }));
      b.pipeline.start();
      assert.equal(b.pipeline.spooledRecords, 30);
      await b.pipeline.flush();
      assert.deepEqual(await stored(tag), ids(tag, 30));
      assert.equal(b.pipeline.spooledRecords, 0);
      await b.pipeline.close();
    });

    test('reloaded settings apply to a running pipeline: the flush interval at once, segment size and batch size from then on', async () => {
      const tag = tagged();
      const dir = tempSpoolDirectory();
      const settings = testSettings(dir, { flushInterval: '1h' });
      const { pipeline } = open(settings);
      pipeline.start();
      await new Promise((resolve) => setTimeout(resolve, 50)); // the first batch (nothing yet) has gone
      for (let i = 0; i < 20; i++) pipeline.record(sampleRecord(i, { requestId: `${tag}-${i}` }));
      await endOfTurn();
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(pipeline.spooledRecords, 20, 'nothing is stored before the hour is up');
      pipeline.reconfigure({ ...settings, flushInterval: 20, batchSize: 7, directory: 'ignored: it takes a restart' });
      const deadline = Date.now() + 5000;
      while (pipeline.spooledRecords > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(await stored(tag), ids(tag, 20));
      // Back to hourly flushes (so the files stay to be counted), with 4 KiB segments instead of 16 MiB.
      pipeline.reconfigure({ ...settings, segmentBytes: 4096 });
      for (let i = 20; i < 100; i++) pipeline.record(sampleRecord(i, { requestId: `${tag}-${i}` }));
      await endOfTurn();
      const segments = readdirSync(dir).filter((f) => f.endsWith('.jsonl')).length;
      assert.ok(segments >= 10, `the spool rotates at the new segment size (${segments} segments)`);
      await pipeline.flush();
      assert.deepEqual(await stored(tag), ids(tag, 100));
      await pipeline.close();
    });

    test('segments rotate by size and are deleted once stored', async () => {
      const tag = tagged();
      const dir = tempSpoolDirectory();
      const { pipeline } = open(testSettings(dir, { flushInterval: '1h', segmentBytes: 4096, batchSize: 7 }));
      pipeline.start();
      for (let i = 0; i < 100; i++) pipeline.record(sampleRecord(i, { requestId: `${tag}-${i}` }));
      await endOfTurn();
      const segments = () => readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
      assert.ok(segments().length >= 10, `expected many segments, found ${segments().length}`);
      await pipeline.flush();
      assert.deepEqual(await stored(tag), ids(tag, 100));
      assert.equal(segments().length, 1, 'only the active segment is left');
      await pipeline.close();
    });

    test('over the disk budget, records are dropped, counted and logged — never silently', async () => {
      const tag = tagged();
      const dir = tempSpoolDirectory();
      const { pipeline, registry, logs } = open(testSettings(dir, { flushInterval: '1h', maxDiskBytes: 8192, segmentBytes: 4096 }), { down: true });
      pipeline.start();
      for (let i = 0; i < 50; i++) pipeline.record(sampleRecord(i, { requestId: `${tag}-${i}` }));
      await endOfTurn();
      const kept = pipeline.spooledRecords;
      assert.ok(kept > 5 && kept < 50, `kept ${kept}`);
      assert.match(await registry.metrics(), new RegExp(`tollgate_analytics_records_total\\{outcome="dropped"\\} ${50 - kept}`));
      const drop = logs.find((l) => l.msg === 'analytics records dropped');
      assert.ok(drop, 'the first drop is logged at once');
      assert.match(String(drop.reason), /maxDiskBytes/);
      await pipeline.close();
      const total = logs.filter((l) => l.msg === 'analytics records dropped').reduce((n, l) => n + Number(l.dropped), 0);
      assert.equal(total, 50 - kept, 'every drop is in the log');

      const up = open(testSettings(dir, { flushInterval: '1h' }));
      up.pipeline.start();
      await up.pipeline.flush();
      assert.deepEqual(await stored(tag), ids(tag, kept));
      await up.pipeline.close();
    });

    test('unreadable lines and a line torn by a crash are skipped, dropped and logged; the rest is stored', async () => {
      const tag = tagged();
      const dir = tempSpoolDirectory();
      mkdirSync(dir, { recursive: true });
      const good = (i: number) => JSON.stringify(sampleRecord(i, { requestId: `${tag}-${i}` })) + '\n';
      appendFileSync(join(dir, '000000000001.jsonl'), good(0) + 'not json\n' + good(1) + '{"id":"x"}\n');
      appendFileSync(join(dir, '000000000002.jsonl'), good(2) + good(3).slice(0, 40));
      const { pipeline, logs } = open(testSettings(dir, { flushInterval: '1h' }));
      pipeline.start();
      await pipeline.flush();
      assert.deepEqual(await stored(tag), ids(tag, 3));
      assert.equal(logs.filter((l) => l.msg === 'skipped a damaged analytics spool line').length, 3, 'two unreadable lines and the torn one');
      await pipeline.close();
      const dropped = logs.filter((l) => l.msg === 'analytics records dropped').reduce((n, l) => n + Number(l.dropped), 0);
      assert.equal(dropped, 3);
      assert.ok(!existsSync(join(dir, '000000000001.jsonl')) && !existsSync(join(dir, '000000000002.jsonl')), 'stored segments are deleted');
    });

    test('a stored segment that cannot be deleted costs a warning, not the batches after it', async () => {
      const tag = tagged();
      const dir = tempSpoolDirectory();
      mkdirSync(dir, { recursive: true });
      // Segment 1 is stored (the checkpoint is past it), but once the pipeline has listed it a directory takes its
      // place (before start's deletion, queued behind it, runs): unlink(2) refuses it.
      writeFileSync(join(dir, '000000000001.jsonl'), '');
      writeFileSync(join(dir, '000000000002.jsonl'), '');
      await writeCheckpoint(dir, { segment: 2, offset: 0 });
      const { pipeline, registry, logs } = open(testSettings(dir, { flushInterval: '1h' }));
      pipeline.start();
      rmSync(join(dir, '000000000001.jsonl'));
      mkdirSync(join(dir, '000000000001.jsonl'));
      writeFileSync(join(dir, '000000000001.jsonl', 'keep'), 'x');
      for (let i = 0; i < 5; i++) pipeline.record(sampleRecord(i, { requestId: `${tag}-${i}` }));
      await pipeline.flush();
      assert.deepEqual(await stored(tag), ids(tag, 5));
      assert.equal(pipeline.spooledRecords, 0);
      assert.match(await registry.metrics(), /tollgate_analytics_records_total\{outcome="written"\} 5/);
      const warnings = logs.filter((l) => l.msg === 'cannot delete stored analytics segments; retried after the next batch');
      assert.equal(warnings.length, 1, 'one warning, not one per batch');
      assert.ok(!logs.some((l) => l.msg === 'cannot store analytics records; they wait in the spool'));
      await pipeline.close();
      rmSync(join(dir, '000000000001.jsonl'), { recursive: true });
    });

    test('retention deletes records older than the retention period', async () => {
      const tag = tagged();
      const { pipeline } = open(testSettings(tempSpoolDirectory(), { flushInterval: '1h', retention: '30d' }));
      pipeline.start();
      const day = 86_400_000;
      const now = Date.now();
      // Both records are inside the period at start, so the retention pass that start() runs in the background cannot
      // race the flush; the explicit pass below looks from 15 days on, where only the older one is past it.
      pipeline.record(sampleRecord(0, { requestId: `${tag}-old`, time: now - 20 * day }));
      pipeline.record(sampleRecord(1, { requestId: `${tag}-new`, time: now - day }));
      await pipeline.flush();
      assert.deepEqual(await stored(tag), [`${tag}-new`, `${tag}-old`]);
      assert.ok((await pipeline.applyRetention(now + 15 * day)) >= 1);
      assert.deepEqual(await stored(tag), [`${tag}-new`]);
      await pipeline.close();
    });

    test('one process per spool directory', async () => {
      const dir = tempSpoolDirectory();
      const a = open(testSettings(dir));
      a.pipeline.start();
      assert.throws(() => open(testSettings(dir)).pipeline.start(), /already used by another pipeline/);
      await a.pipeline.close();
      const b = open(testSettings(dir));
      b.pipeline.start();
      await b.pipeline.close();
    });
  });
}

describe('analytics retention on a SQLite file', () => {
  let target: TestDatabase;
  let db: Database;

  before(async () => {
    target = await DATABASE_BACKENDS[0].create();
    db = await target.open({ listen: false });
  });
  after(async () => {
    await db?.close();
    await target?.dispose();
  });

  test('deleting 300,000 expired records leaves the event loop free between chunks (the statements run on it)', async () => {
    const records = new AnalyticsRecords(db);
    const day = 86_400_000;
    const old = Date.now() - 40 * day;
    for (let i = 0; i < 300_000; i += 1024) {
      const rows = Array.from({ length: Math.min(1024, 300_000 - i) }, (_, j) => recordRow(sampleRecord(i + j, { time: old + i + j }))!);
      await records.insert(rows, 1024, { onEventLoop: false });
    }
    // Not started: applyRetention is what the hourly timer runs, and start() would run a pass of its own beside it.
    const pipeline = new AnalyticsPipeline({ db, settings: testSettings(tempSpoolDirectory(), { retention: '30d' }), registry: new Registry() });
    const { result: deleted, longest, took } = await measureStalls(() => pipeline.applyRetention());
    assert.equal(deleted, 300_000);
    assert.ok(longest < Math.max(100, took / 4), `the event loop stalled ${Math.round(longest)} ms of a ${Math.round(took)} ms retention pass`);
  });

  test('retention waiting for another process\'s write lock waits in the writer thread, not on the event loop', async () => {
    const records = new AnalyticsRecords(db);
    const old = Date.now() - 40 * 86_400_000;
    await records.insert(Array.from({ length: 1000 }, (_, i) => recordRow(sampleRecord(i, { requestId: `locked-${i}`, time: old + i }))!), 1000, { onEventLoop: false });
    const pipeline = new AnalyticsPipeline({ db, databaseUrl: target.url, settings: testSettings(tempSpoolDirectory(), { retention: '30d' }), registry: new Registry() });
    // The writer thread started, as by the pass start() runs.
    await pipeline.applyRetention(old);
    // A backup tool or a sqlite3 shell in a write transaction for a second.
    const file = target.url.slice('sqlite:'.length);
    const locker = spawn(process.execPath, ['-e', `const d = new (require('better-sqlite3'))(${JSON.stringify(file)}); d.exec('BEGIN IMMEDIATE'); console.log('locked'); setTimeout(() => { d.exec('COMMIT'); d.close(); }, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await once(locker.stdout!, 'data');
      const { result: deleted, longest } = await measureStalls(() => pipeline.applyRetention());
      assert.equal(deleted, 1000);
      // Before, the DELETE ran on the event loop, which SQLite's busy timeout held until the lock was let go.
      assert.ok(longest < 300, `the event loop stalled ${Math.round(longest)} ms`);
    } finally {
      locker.kill();
      await pipeline.close();
    }
  });
});

describe('analytics pipeline closing while the records table is locked (postgres)', { skip: DATABASE_BACKENDS[1].skip }, () => {
  const env = useRecordsDatabase(DATABASE_BACKENDS[1]);

  test('a retention pass that failed is tried again within seconds, not at the next hour', { timeout: 60_000 }, async () => {
    const old = Date.now() - 40 * 86_400_000;
    await env.records.insert(Array.from({ length: 10 }, (_, i) => recordRow(sampleRecord(i, { requestId: `expired-${i}`, time: old + i }))!), 10, { onEventLoop: false });
    const locker = await env.target.open({ listen: false });
    const captured = capturingLogger();
    const pipeline = new AnalyticsPipeline({ db: env.db, databaseUrl: env.target.url, databaseSchema: env.target.schema, settings: testSettings(tempSpoolDirectory(), { retention: '30d', writeTimeout: '1s', flushInterval: '1h' }), registry: new Registry(), logger: captured.logger });
    let unlock: (() => Promise<void>) | undefined;
    try {
      // Held past the first pass's writeTimeout: that pass fails.
      unlock = await lockRecordsTable(locker, 30_000);
      pipeline.start();
      await waitFor(() => captured.lines.some((l) => l.msg === 'analytics retention failed; retrying'), 10_000, 'the failed pass');
      await unlock();
      unlock = undefined;
      // Before, the next pass was the hourly one.
      await waitFor(async () => (await storedNumbers(env.records, 'expired')).length === 0, 20_000, 'the expired records deleted by a retried pass');
    } finally {
      await unlock?.();
      await pipeline.close();
      await locker.close();
    }
  });

  test('close ends within its window, the delete under way cut; the record is stored once at the next start', { timeout: 90_000 }, async () => {
    const dir = tempSpoolDirectory();
    const open = () => new AnalyticsPipeline({ db: env.db, databaseUrl: env.target.url, databaseSchema: env.target.schema, settings: testSettings(dir, { flushInterval: '1h' }), registry: new Registry(), logger: capturingLogger().logger });
    const locker = await env.target.open({ listen: false });
    let unlock: (() => Promise<void>) | undefined;
    try {
      unlock = await lockRecordsTable(locker, 60_000);
      const first = open();
      // Its start sends the retention pass's first DELETE, which waits on the lock (for writeTimeout, 30 s).
      first.start();
      first.record(sampleRecord(0, { requestId: 'locked-0' }));
      await new Promise((r) => setTimeout(r, 500));
      const started = performance.now();
      await first.close();
      const took = performance.now() - started;
      // Before: the flush's 5 s, then the retention DELETE's whole writeTimeout (~30 s in all): past a pod's grace period.
      assert.ok(took < 12_000, `close took ${Math.round(took)} ms`);
    } finally {
      await unlock?.();
      await locker.close();
    }
    const second = open();
    second.start();
    await second.flush();
    await second.close();
    assert.deepEqual(await storedNumbers(env.records, 'locked'), [0]);
  });
});
