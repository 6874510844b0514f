// Record ids: valid UUIDv7s that sort in the order they were made, unique within a process whatever the clock does, and across processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { moduleArgs } from '../lib/module-child.js';
import { newRecordId, recordIdTime } from './record-id.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('record ids are UUIDv7, carry their time, and sort by it', () => {
  const ids = [0, 1, 2, 1000, 86_400_000].map((dt) => newRecordId(1_700_000_000_000 + dt));
  for (const id of ids) assert.match(id, UUID_V7);
  assert.deepEqual([...ids].sort(), ids);
  assert.equal(recordIdTime(ids[3]), 1_700_000_001_000);
  assert.notEqual(newRecordId(5), newRecordId(5));
});

test('ids made in one millisecond sort in the order they were made, across the counter carrying into its high bits', () => {
  // Past 2^16 ids the counter's low 16 bits wrap at least once.
  const ids = Array.from({ length: 150_000 }, (_, i) => newRecordId(1_700_000_000_000 + (i >> 14)));
  for (const id of [ids[0], ids[65_535], ids[65_536], ids.at(-1)!]) assert.match(id, UUID_V7);
  assert.ok(ids.every((id, i) => i === 0 || ids[i - 1] < id), 'strictly increasing');
  assert.equal(recordIdTime(ids.at(-1)!), 1_700_000_000_000 + (149_999 >> 14));
});

test('a wall clock stepped back does not repeat an id of this process', () => {
  const t = 1_800_000_000_000;
  const ids = [t, t, t + 5, t, t, t - 1000, t].map((now) => newRecordId(now));
  assert.equal(new Set(ids).size, ids.length);
});

test('each process has its own random tail', () => {
  const args = moduleArgs(new URL('./record-id.ts', import.meta.url));
  const script = `import(${JSON.stringify(pathToFileURL(args.at(-1)!).href)}).then((m) => process.stdout.write(m.newRecordId(1)))`;
  const tails = [0, 1].map(() => execFileSync(process.execPath, [...args.slice(0, -1), '-e', script], { encoding: 'utf8' }).slice(-8));
  tails.push(newRecordId(1).slice(-8));
  assert.equal(new Set(tails).size, 3, tails.join(' '));
});
