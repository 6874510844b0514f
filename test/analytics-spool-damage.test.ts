// A damaged spool directory (torn or garbage lines, emptied segments, stray files, a bad checkpoint): every intact
// record is still stored exactly once, each damaged line costs one warning naming its file and offset, and the
// pipeline keeps storing what comes after.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { AnalyticsPipeline } from '../src/analytics/pipeline.js';
import { segmentPath } from '../src/analytics/spool-files.js';
import { capturingLogger, range, sampleRecord, storedNumbers, tempSpoolDirectory, testSettings, useRecordsDatabase } from '../src/analytics/test-records.js';
import { DATABASE_BACKENDS } from '../src/store/test-databases.js';

const DAMAGED_LINE = 'skipped a damaged analytics spool line';
const UNTRUSTED_CHECKPOINT = 'the analytics checkpoint cannot be trusted; replaying every spooled record (the database skips those it has)';

for (const backend of DATABASE_BACKENDS) {
  describe(`a damaged analytics spool (${backend.name})`, { skip: backend.skip }, () => {
    const env = useRecordsDatabase(backend);
    let run = 0;

    /** Request ids are `<tag>-<i>`, so each test reads only its own rows of the shared database. */
    const tagged = () => `d${++run}`;
    const line = (tag: string, i: number) => JSON.stringify(sampleRecord(i, { requestId: `${tag}-${i}` })) + '\n';
    const stored = (tag: string) => storedNumbers(env.records, tag);

    /** A pipeline as a gateway on this database runs it (the writer thread stores), or storing from the event loop. */
    function open(dir: string, thread: boolean) {
      const logger = capturingLogger();
      const registry = new Registry();
      const pipeline = new AnalyticsPipeline({
        db: env.db,
        databaseUrl: thread ? env.target.url : undefined,
        databaseSchema: env.target.schema,
        settings: testSettings(dir, { flushInterval: '1h' }),
        registry,
        logger: logger.logger,
      });
      return { pipeline, registry, logs: logger.lines };
    }

    /** Starts a pipeline on `dir`, stores what is there, then checks it still stores a new record. */
    async function replay(dir: string, tag: string, { thread = true } = {}) {
      const opened = open(dir, thread);
      opened.pipeline.start();
      await opened.pipeline.flush();
      opened.pipeline.record(sampleRecord(1000, { requestId: `${tag}-1000` }));
      await opened.pipeline.flush();
      assert.equal(opened.pipeline.spooledRecords, 0);
      const metrics = await opened.registry.metrics();
      await opened.pipeline.close();
      const dropped = Number(/tollgate_analytics_records_total\{outcome="dropped"\} (\d+)/.exec(metrics)![1]);
      return { logs: opened.logs, dropped };
    }

    function damagedLines(logs: { msg: string; [key: string]: unknown }[]): { file: unknown; offset: unknown }[] {
      return logs.filter((l) => l.msg === DAMAGED_LINE).map((l) => ({ file: l.file, offset: l.offset }));
    }

    test('torn, garbage and partial lines are skipped with one warning each naming file and offset; every intact record is stored once', async () => {
      const tag = tagged();
      const dir = tempSpoolDirectory();
      mkdirSync(dir, { recursive: true });
      const one = segmentPath(dir, 1);
      const two = segmentPath(dir, 2);
      const three = segmentPath(dir, 3);
      // Segment 1: garbage and a record cut short (with its newline) between intact records.
      const head = line(tag, 0) + line(tag, 1);
      const partial = line(tag, 90).slice(0, 60) + '\n';
      appendFileSync(one, head + 'not json at all\n' + line(tag, 2) + partial + line(tag, 3));
      // Segment 2: 100 KiB of zeros (a power loss's unwritten blocks) as one line, then a record whose append a
      // crash cut short (the last line, without its newline).
      const zeros = Buffer.alloc(100 * 1024);
      appendFileSync(two, line(tag, 4) + line(tag, 5));
      appendFileSync(two, zeros);
      appendFileSync(two, '\n' + line(tag, 6) + line(tag, 91).slice(0, 80));
      appendFileSync(three, line(tag, 7));

      const { logs, dropped } = await replay(dir, tag);
      assert.deepEqual(await stored(tag), [...range(0, 8), 1000]);
      const twoHead = Buffer.byteLength(line(tag, 4) + line(tag, 5));
      assert.deepEqual(damagedLines(logs), [
        { file: one, offset: Buffer.byteLength(head) },
        { file: one, offset: Buffer.byteLength(head + 'not json at all\n' + line(tag, 2)) },
        { file: two, offset: twoHead },
        { file: two, offset: twoHead + zeros.length + 1 + Buffer.byteLength(line(tag, 6)) },
      ]);
      assert.equal(dropped, 4, 'each damaged line counts as dropped');
    });

    test('an emptied segment and stray files in the directory cost nothing else', async () => {
      const tag = tagged();
      const dir = tempSpoolDirectory();
      mkdirSync(dir, { recursive: true });
      appendFileSync(segmentPath(dir, 1), line(tag, 0) + line(tag, 1));
      writeFileSync(segmentPath(dir, 2), '');
      appendFileSync(segmentPath(dir, 3), line(tag, 2));
      // What people and tools leave behind: notes, a copy of a segment, an editor's backup, a directory named like a
      // segment, and a checkpoint write a crash interrupted.
      writeFileSync(join(dir, 'notes.txt'), 'moved the old spool away\n');
      writeFileSync(`${segmentPath(dir, 1)}.bak`, line(tag, 50));
      writeFileSync(`${segmentPath(dir, 3)}~`, line(tag, 51));
      mkdirSync(segmentPath(dir, 4));
      writeFileSync(join(dir, 'checkpoint.json.tmp'), '{"segm');

      const { logs, dropped } = await replay(dir, tag);
      assert.deepEqual(await stored(tag), [0, 1, 2, 1000]);
      assert.deepEqual(damagedLines(logs), []);
      assert.equal(dropped, 0);
      // The directory keeps its name out of the numbering: new segments go after it.
      const again = await replay(dir, tag);
      assert.deepEqual(damagedLines(again.logs), []);
    });

    // Segments 1-3 hold records 0-29 that the database does not have (a crash or an outage); only the checkpoint
    // varies. A checkpoint that cannot be trusted replays everything on disk (the database skips what it has).
    const lineStart = (tag: string, i: number) => Buffer.byteLength(range(10, i).map((n) => line(tag, n)).join(''));
    const CHECKPOINTS: { name: string; text: (tag: string) => string; from: number; trusted: boolean }[] = [
      { name: 'at a record', text: (tag) => JSON.stringify({ segment: 2, offset: lineStart(tag, 15) }), from: 15, trusted: true },
      { name: 'at the start of a segment that was never created (its open failed)', text: () => '{"segment":4,"offset":0}', from: 0, trusted: true },
      { name: 'garbage', text: () => '\u0000\u0000\u0000garbage', from: 0, trusted: false },
      { name: 'truncated to nothing', text: () => '', from: 0, trusted: false },
      { name: 'cut in the middle', text: () => '{"segment":2,"off', from: 0, trusted: false },
      { name: 'past the end of its segment', text: (tag) => JSON.stringify({ segment: 2, offset: lineStart(tag, 20) + 500 }), from: 0, trusted: false },
      { name: 'inside a record', text: (tag) => JSON.stringify({ segment: 2, offset: lineStart(tag, 15) + 7 }), from: 0, trusted: false },
      { name: 'in a deleted segment', text: () => '{"segment":7,"offset":120}', from: 0, trusted: false },
      { name: 'beyond any segment name', text: () => '{"segment":1e15,"offset":0}', from: 0, trusted: false },
    ];
    for (const checkpoint of CHECKPOINTS) {
      test(`a checkpoint ${checkpoint.name}: ${checkpoint.trusted ? 'used' : 'a warning, and nothing is lost'}`, async () => {
        const tag = tagged();
        const dir = tempSpoolDirectory();
        mkdirSync(dir, { recursive: true });
        for (const s of [1, 2, 3]) appendFileSync(segmentPath(dir, s), range(s * 10 - 10, s * 10).map((i) => line(tag, i)).join(''));
        writeFileSync(join(dir, 'checkpoint.json'), checkpoint.text(tag));

        // Where reading starts does not depend on who stores.
        const { logs } = await replay(dir, tag, { thread: false });
        assert.deepEqual(await stored(tag), [...range(checkpoint.from, 30), 1000]);
        const warnings = logs.filter((l) => l.msg === UNTRUSTED_CHECKPOINT);
        assert.equal(warnings.length, checkpoint.trusted ? 0 : 1);
        if (!checkpoint.trusted) assert.equal(warnings[0].file, join(dir, 'checkpoint.json'));
      });
    }
  });
}
