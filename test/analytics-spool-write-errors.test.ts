// A spool that cannot be written (disk full, a failing fdatasync), with real failing system calls: /dev/full answers
// every write with ENOSPC, /dev/null refuses fdatasync, and, where this process may mount, a small tmpfs really fills
// up. No answer waits for it, the records go straight to the database, and an error log and a metric say so.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statfsSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { AnalyticsPipeline } from '../src/analytics/pipeline.js';
import { segmentPath } from '../src/analytics/spool-files.js';
import { capturingLogger, range, sampleRecord, storedNumbers, tempSpoolDirectory, testSettings, useRecordsDatabase } from '../src/analytics/test-records.js';
import { DATABASE_BACKENDS } from '../src/store/test-databases.js';

const SPOOL_FAILED = 'cannot write the analytics spool; records wait in memory and go straight to the database';
const SPOOL_BACK = 'the analytics spool is written again';
const CLAIM_FAILED = 'cannot claim the analytics directory: no room on its disk; records wait in memory and go straight to the database until it can be claimed';
/** The spool tries a segment again at most once a second after a failure. */
const REOPEN_WAIT_MS = 1100;

/** Records reach the spool at the end of the event-loop turn that recorded them (group commit). */
const endOfTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function metric(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  assert.ok(line, `${series} is exported`);
  return Number(line.slice(series.length + 1));
}

/** A tmpfs of `bytes` (root only, where mounting is allowed at all); undefined when it cannot be mounted. */
function mountTmpfs(bytes: number): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'ignore' });
    return dir;
  } catch {
    rmSync(dir, { recursive: true });
    return undefined;
  }
}
const tmpfs = mountTmpfs(256 * 1024);
// On exit rather than in after(): a test file that dies of an unhandled error must not leave the mount behind.
if (tmpfs) {
  process.once('exit', () => {
    execFileSync('umount', [tmpfs]);
    rmSync(tmpfs, { recursive: true });
  });
}

for (const backend of DATABASE_BACKENDS) {
  describe(`analytics spool write errors (${backend.name})`, { skip: backend.skip }, () => {
    const env = useRecordsDatabase(backend);
    let run = 0;

    const tagged = () => `w${++run}`;
    const stored = (tag: string) => storedNumbers(env.records, tag);

    /** The writer thread stores, as in a gateway on a database file or PostgreSQL; `down`: the database cannot be reached. */
    function open(dir: string, settings: Record<string, unknown>, { down = false } = {}) {
      const logger = capturingLogger();
      const registry = new Registry();
      const databaseUrl = down ? (backend.name === 'sqlite' ? `sqlite:${join(tempSpoolDirectory(), 'missing', 'x.db')}` : 'postgres://postgres@127.0.0.1:9/test') : env.target.url;
      const pipeline = new AnalyticsPipeline({
        db: env.db,
        databaseUrl,
        databaseSchema: env.target.schema,
        settings: testSettings(dir, { flushInterval: '1h', segmentBytes: 4096, ...settings }),
        registry,
        logger: logger.logger,
      });
      return { pipeline, registry, logs: logger.lines };
    }
    const record = (pipeline: AnalyticsPipeline, tag: string, from: number, to: number) => {
      for (const i of range(from, to)) pipeline.record(sampleRecord(i, { requestId: `${tag}-${i}` }));
    };

    test('a segment that answers ENOSPC: the records go straight to the database, logged and counted, and the spool is used again', async () => {
      const tag = tagged();
      const dir = tempSpoolDirectory();
      const { pipeline, registry, logs } = open(dir, {});
      pipeline.start();
      // The next segment is /dev/full: the turn's first records fill segment 1, the rest meet ENOSPC.
      symlinkSync('/dev/full', segmentPath(dir, 2));
      let answered = 0;
      for (const i of range(0, 40)) pipeline.record(sampleRecord(i, { requestId: `${tag}-${i}` }), () => answered++);
      await endOfTurn();
      assert.equal(answered, 40, 'no answer waits for a failing spool');
      assert.equal(pipeline.spooledRecords, 40, 'all 40 wait for the database');
      const failed = logs.filter((l) => l.msg === SPOOL_FAILED);
      assert.equal(failed.length, 1);
      const err = failed[0].err as { code: string; path: string };
      assert.equal(err.code, 'ENOSPC');
      assert.equal(err.path, segmentPath(dir, 2), 'the log names the file');

      await pipeline.flush();
      assert.deepEqual(await stored(tag), range(0, 40));
      assert.equal(pipeline.spooledRecords, 0);
      let text = await registry.metrics();
      assert.equal(metric(text, 'tollgate_analytics_spool_errors_total{operation="write"}'), 1);
      assert.equal(metric(text, 'tollgate_analytics_records_total{outcome="written"}'), 40);
      assert.equal(metric(text, 'tollgate_analytics_records_total{outcome="dropped"}'), 0);

      await sleep(REOPEN_WAIT_MS);
      record(pipeline, tag, 40, 45);
      await endOfTurn();
      assert.ok(logs.some((l) => l.msg === SPOOL_BACK));
      await pipeline.flush();
      assert.deepEqual(await stored(tag), range(0, 45));
      text = await registry.metrics();
      assert.equal(metric(text, 'tollgate_analytics_records_total{outcome="dropped"}'), 0);
      assert.equal(metric(text, 'tollgate_analytics_spool_errors_total{operation="write"}'), 1);
      await pipeline.close();
    });

    test('with the database down as well, what is held gets a last try at the spool at close, and the next start stores it', async () => {
      const tag = tagged();
      const dir = tempSpoolDirectory();
      const down = open(dir, {}, { down: true });
      down.pipeline.start();
      symlinkSync('/dev/full', segmentPath(dir, 2));
      record(down.pipeline, tag, 0, 40);
      await endOfTurn();
      await assert.rejects(down.pipeline.flush());
      await sleep(REOPEN_WAIT_MS);
      await down.pipeline.close();
      assert.equal(metric(await down.registry.metrics(), 'tollgate_analytics_records_total{outcome="dropped"}'), 0);

      const up = open(dir, {});
      up.pipeline.start();
      await up.pipeline.flush();
      assert.deepEqual(await stored(tag), range(0, 40));
      await up.pipeline.close();
    });

    test('a segment whose fdatasync fails: an error log names it and the metric counts it', async () => {
      const dir = tempSpoolDirectory();
      const { pipeline, registry, logs } = open(dir, { flushInterval: '10ms' });
      pipeline.start();
      // /dev/null takes the writes but refuses fdatasync (EINVAL). 12 records of about 500 bytes fill 4 KiB segment 1
      // and leave segment 2 active, so it is not deleted (as stored) before its fdatasync.
      symlinkSync('/dev/null', segmentPath(dir, 2));
      record(pipeline, tagged(), 0, 12);
      await endOfTurn();
      const message = 'cannot fdatasync an analytics segment; its records are not safe from a power loss until stored';
      for (let waited = 0; !logs.some((l) => l.msg === message) && waited < 5000; waited += 20) await sleep(20);
      const failed = logs.find((l) => l.msg === message);
      assert.ok(failed, 'logged');
      assert.equal(failed.level, 50, 'as an error');
      assert.equal(failed.file, segmentPath(dir, 2));
      assert.equal(metric(await registry.metrics(), 'tollgate_analytics_spool_errors_total{operation="sync"}'), 1);
      await pipeline.close();
    });

    test('a filesystem that really fills up: a short write, no room for the checkpoint; nothing is lost or torn, and the pipeline keeps going', { skip: tmpfs ? undefined : 'cannot mount a tmpfs here (needs root)' }, async () => {
      const tag = tagged();
      const dir = join(tmpfs!, tag);
      mkdirSync(dir);
      const { pipeline, registry, logs } = open(dir, {});
      pipeline.start();
      // Something else takes the disk, all but one block: a few records fit, the next is cut short.
      const filler = join(tmpfs!, `${tag}-filler`);
      const { bavail, bsize } = statfsSync(tmpfs!);
      writeFileSync(filler, Buffer.alloc((bavail - 1) * bsize));
      for (const i of range(0, 10)) {
        record(pipeline, tag, i, i + 1);
        await endOfTurn();
      }
      const failed = logs.find((l) => l.msg === SPOOL_FAILED);
      assert.ok(failed, 'the failure is logged');
      assert.match(String((failed.err as { message: string }).message), /short write|ENOSPC/);
      // The spooled records' batch cannot leave a checkpoint behind (no block for it), which holds up neither the
      // records after it nor the deletes that give the disk back.
      await pipeline.flush();
      assert.deepEqual(await stored(tag), range(0, 10));
      assert.equal(pipeline.spooledRecords, 0);
      assert.ok(logs.some((l) => l.msg === 'cannot write the analytics checkpoint; a restart would store some records again (the database skips them)'));

      rmSync(filler);
      await sleep(REOPEN_WAIT_MS);
      record(pipeline, tag, 10, 20);
      await endOfTurn();
      assert.ok(logs.some((l) => l.msg === SPOOL_BACK));
      await pipeline.flush();
      await pipeline.close();
      assert.deepEqual(await stored(tag), range(0, 20));
      assert.ok(!logs.some((l) => l.msg === 'skipped a damaged analytics spool line'), 'the short write left no torn line behind');
      const text = await registry.metrics();
      assert.equal(metric(text, 'tollgate_analytics_records_total{outcome="dropped"}'), 0);
      assert.ok(metric(text, 'tollgate_analytics_spool_errors_total{operation="write"}') >= 1);
      rmSync(dir, { recursive: true });
    });

    test('a pipeline started on a full disk serves on: the directory is claimed once there is room, and records go straight to the database meanwhile', { skip: tmpfs ? undefined : 'cannot mount a tmpfs here (needs root)' }, async () => {
      const tag = tagged();
      const dir = join(tmpfs!, tag);
      mkdirSync(dir);
      // Something else takes the whole disk: not a block is left for the lock file.
      const filler = join(tmpfs!, `${tag}-filler`);
      const { bavail, bsize } = statfsSync(tmpfs!);
      writeFileSync(filler, Buffer.alloc(bavail * bsize));
      const { pipeline, registry, logs } = open(dir, {});
      pipeline.start();
      const failed = logs.find((l) => l.msg === CLAIM_FAILED);
      assert.ok(failed, 'the failure is logged');
      assert.equal(failed.level, 50, 'as an error');
      assert.equal((failed.err as { code: string }).code, 'ENOSPC');
      assert.deepEqual(readdirSync(dir), [], 'nothing is written to a directory it does not hold');
      let answered = 0;
      for (const i of range(0, 10)) pipeline.record(sampleRecord(i, { requestId: `${tag}-${i}` }), () => answered++);
      await endOfTurn();
      assert.equal(answered, 10, 'no answer waits');
      await pipeline.flush();
      assert.deepEqual(await stored(tag), range(0, 10));
      assert.ok(metric(await registry.metrics(), 'tollgate_analytics_spool_errors_total{operation="write"}') >= 1);

      // Room again: the next batch claims the directory, and records are spooled from then on.
      rmSync(filler);
      await sleep(REOPEN_WAIT_MS);
      await pipeline.flush();
      assert.ok(readdirSync(dir).includes('LOCK'), 'claimed');
      record(pipeline, tag, 10, 20);
      await endOfTurn();
      assert.ok(logs.some((l) => l.msg === SPOOL_BACK));
      await pipeline.flush();
      await pipeline.close();
      assert.deepEqual(await stored(tag), range(0, 20));
      assert.equal(metric(await registry.metrics(), 'tollgate_analytics_records_total{outcome="dropped"}'), 0);
      rmSync(dir, { recursive: true });
    });
  });
}
