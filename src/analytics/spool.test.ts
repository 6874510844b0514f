// The spool on its own: synchronous appends, rotation, the disk budget, and a reader that never sees half a line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { Spool } from './spool.js';
import { readCheckpoint, segmentPath, writeCheckpoint } from './spool-files.js';
import { scanBacklog, SpoolReader, type SpoolBatch } from './spool-reader.js';
import { tempSpoolDirectory } from './test-records.js';

function fresh(): string {
  const dir = tempSpoolDirectory();
  mkdirSync(dir, { recursive: true });
  return dir;
}

const line = (i: number) => `{"i":${i},"pad":"${'x'.repeat(80)}"}\n`;
const numbers = (batch: SpoolBatch) => (batch.at.length === 0 ? [] : batch.text.split('\n').map((l) => JSON.parse(l).i as number));

test('appends rotate by size; the reader crosses segments in order and stops at what was written', async () => {
  const dir = fresh();
  const spool = new Spool(dir, { segmentBytes: 1000, maxDiskBytes: 1e9 });
  for (let i = 0; i < 30; i++) assert.equal(spool.appendLines([line(i)]).outcome, 'ok');
  assert.ok(spool.activeSegment >= 3);
  const reader = new SpoolReader(spool, { segment: spool.firstSegment, offset: 0 });
  const seen: number[] = [];
  for (let batch = reader.read(7); batch.at.length > 0; batch = reader.read(7)) {
    assert.ok(batch.at.length <= 7);
    assert.equal(batch.text.split('\n').length, batch.at.length);
    seen.push(...numbers(batch));
    reader.commit(batch.end);
  }
  assert.deepEqual(seen, Array.from({ length: 30 }, (_, i) => i));
  assert.deepEqual(reader.position, { segment: spool.activeSegment, offset: spool.activeSize });
  spool.appendLines([line(30)]);
  assert.deepEqual(numbers(reader.read(10)), [30]);

  await spool.removeBefore(spool.activeSegment);
  assert.deepEqual(readdirSync(dir), [segmentPath(dir, spool.activeSegment).slice(dir.length + 1)]);
  spool.close();
});

test('a stored segment that cannot be deleted stays counted and listed, in order, and goes at the next try', async () => {
  const dir = fresh();
  const spool = new Spool(dir, { segmentBytes: 200, maxDiskBytes: 1e9 });
  for (let i = 0; i < 10; i++) spool.appendLines([line(i)]);
  const sealed = [...spool.sealedSegments()];
  assert.ok(sealed.length >= 3, `sealed ${sealed}`);
  const bytes = spool.diskBytes;
  // A directory in the segment's place: unlink(2) fails with EISDIR, even for root.
  const stuck = segmentPath(dir, sealed[0]);
  rmSync(stuck);
  mkdirSync(stuck);
  writeFileSync(`${stuck}/keep`, 'x');
  await assert.rejects(spool.removeBefore(sealed[2]), { code: 'EISDIR' });
  assert.deepEqual([...spool.sealedSegments()], [sealed[0], ...sealed.slice(2)], 'kept, still first');
  assert.equal(spool.firstSegment, sealed[0]);
  assert.ok(spool.diskBytes < bytes && spool.diskBytes > 0, 'only the deleted segment left the budget');
  rmSync(stuck, { recursive: true });
  await spool.removeBefore(sealed[2]);
  assert.deepEqual([...spool.sealedSegments()], sealed.slice(2));
  spool.close();
});

test('the disk budget refuses appends instead of growing', () => {
  const dir = fresh();
  const spool = new Spool(dir, { segmentBytes: 1e6, maxDiskBytes: 500 });
  const outcomes = Array.from({ length: 10 }, (_, i) => spool.appendLines([line(i)]).outcome);
  assert.deepEqual(outcomes, ['ok', 'ok', 'ok', 'ok', 'ok', 'full', 'full', 'full', 'full', 'full']);
  assert.ok(spool.diskBytes <= 500);
  spool.close();
  assert.equal(spool.appendLines([line(99)]).outcome, 'failed', 'closed');
});

test('a new process starts a new segment after the old ones and the checkpoint; the backlog is counted from the checkpoint', async () => {
  const dir = fresh();
  appendFileSync(segmentPath(dir, 4), line(0) + line(1) + line(2));
  appendFileSync(segmentPath(dir, 5), line(3) + line(4).slice(0, 10));
  await writeCheckpoint(dir, { segment: 4, offset: Buffer.byteLength(line(0)) });
  const checkpoint = readCheckpoint(dir)!;
  const spool = new Spool(dir, { segmentBytes: 1e6, maxDiskBytes: 1e9 }, 9);
  assert.equal(spool.activeSegment, 10, 'after the checkpoint’s segment even when it is gone');
  const backlog = scanBacklog(spool, checkpoint);
  assert.equal(backlog.lines, 3);
  assert.equal(JSON.parse(backlog.first!).i, 1);
  const batch = new SpoolReader(spool, checkpoint).read(100);
  assert.deepEqual(numbers(batch), [1, 2, 3]);
  assert.deepEqual(batch.damaged, [{ segment: 5, offset: Buffer.byteLength(line(3)) }], 'the torn last line');
  assert.deepEqual(batch.end, { segment: 10, offset: 0 });
  spool.close();
});

test('a batch is its lines as written, joined by newlines without the empty ones, each with where it starts', () => {
  const dir = fresh();
  const lines = ['{"i":0,"s":"ü例😀"}\n', '\n', '\n', '{"i":1,"s":"\\"q\\""}\n', '{"i":2}\n', '\n', '{"i":3}\n'];
  appendFileSync(segmentPath(dir, 1), lines.join(''));
  appendFileSync(segmentPath(dir, 2), '{"i":4}\n\n');
  const spool = new Spool(dir, { segmentBytes: 1e6, maxDiskBytes: 1e9 }, 2);
  spool.appendLines(['{"i":5}\n', '{"i":6}\n']);
  const batch = new SpoolReader(spool, { segment: 1, offset: 0 }).read(100);
  assert.equal(batch.text, ['{"i":0,"s":"ü例😀"}', '{"i":1,"s":"\\"q\\""}', '{"i":2}', '{"i":3}', '{"i":4}', '{"i":5}', '{"i":6}'].join('\n'));
  const starts = (seg: number, texts: string[]) => texts.map((_, i) => ({ segment: seg, offset: Buffer.byteLength(texts.slice(0, i).join('')) }));
  const written = starts(1, lines);
  assert.deepEqual(batch.at, [written[0], written[3], written[4], written[6], { segment: 2, offset: 0 }, ...starts(3, ['{"i":5}\n', '{"i":6}\n'])]);
  assert.deepEqual(batch.damaged, []);
  spool.close();
});
