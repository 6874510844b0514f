// The pipeline's ages and timers on the monotonic clock: a step of the wall clock (an NTP correction, a restored VM)
// during an outage neither hides the lag nor keeps a quiet segment open.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { Registry } from 'prom-client';
import { openDatabase } from '../store/index.js';
import { AnalyticsPipeline } from './pipeline.js';
import { Spool } from './spool.js';
import { sampleRecord, tempSpoolDirectory, testSettings } from './test-records.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const realNow = Date.now;
/** Moves the wall clock by `ms` from now on (until the test ends). */
const stepClock = (ms: number) => (Date.now = () => realNow() + ms);
afterEach(() => (Date.now = realNow));

test('the lag keeps growing when the wall clock steps back while records wait', async () => {
  const db = await openDatabase('sqlite::memory:');
  // No batch before close: the records wait as during an outage.
  const pipeline = new AnalyticsPipeline({ db, settings: testSettings(tempSpoolDirectory(), { flushInterval: '1h' }), registry: new Registry() });
  try {
    pipeline.start();
    // The start's own first batch (of what earlier processes left) done: a timer of 0 set after its own fires after it,
    // and a flush then waits for that batch. With a 20 ms sleep instead, on a loaded host the batch ran only after the
    // records below and stored them, and the lag read 0.
    await sleep(0);
    await pipeline.flush();
    for (let i = 0; i < 5; i++) pipeline.record(sampleRecord(i));
    // Spooled (and aged from) at the end of this turn: on a loaded host a 300 ms timer could fire first, its wait
    // then counting nothing of theirs.
    await new Promise((resolve) => setImmediate(resolve));
    await sleep(300);
    const before = pipeline.lagSeconds;
    assert.ok(before >= 0.25, `lag ${before}`);
    stepClock(-10 * 60_000);
    for (let i = 5; i < 10; i++) pipeline.record(sampleRecord(i));
    await sleep(100);
    // Before, it read 0 for the ten minutes of the step.
    assert.ok(pipeline.lagSeconds >= before + 0.05, `lag ${pipeline.lagSeconds} after ${before}`);
    await pipeline.flush();
    assert.equal(pipeline.lagSeconds, 0);
  } finally {
    await pipeline.close();
    await db.close();
  }
});

test("the lag of an earlier process's records starts from their age", async () => {
  const dir = tempSpoolDirectory();
  mkdirSync(dir, { recursive: true });
  const left = new Spool(dir, { segmentBytes: 1 << 20, maxDiskBytes: 1 << 30 });
  left.appendLines([`${JSON.stringify(sampleRecord(1, { time: Date.now() - 5000 }))}\n`, `${JSON.stringify(sampleRecord(2))}\n`]);
  left.close();
  const db = await openDatabase('sqlite::memory:');
  const pipeline = new AnalyticsPipeline({ db, settings: testSettings(dir, { flushInterval: '1h' }), registry: new Registry() });
  try {
    pipeline.start();
    assert.ok(pipeline.lagSeconds >= 5 && pipeline.lagSeconds < 6, `lag ${pipeline.lagSeconds}`);
  } finally {
    await pipeline.close();
    await db.close();
  }
});

test('a segment opened before the wall clock stepped back is as old as it is', () => {
  const dir = tempSpoolDirectory();
  mkdirSync(dir, { recursive: true });
  const spool = new Spool(dir, { segmentBytes: 1 << 20, maxDiskBytes: 1 << 30 });
  try {
    stepClock(-10 * 60_000);
    // Before, -600,000 ms: a quiet segment stayed open (its stored records on disk) for the ten minutes of the step.
    assert.ok(spool.activeAgeMs >= 0 && spool.activeAgeMs < 1000, `age ${spool.activeAgeMs}`);
  } finally {
    spool.close();
  }
});
