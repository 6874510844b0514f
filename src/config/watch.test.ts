import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../sim/testing.js';
import { watchConfig } from './watch.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fresh directory watched for the test's length; `changes()` counts the reloads it asked for. */
function watchedDir(t: TestContext): { dir: string; changes: () => number } {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-watch-'));
  let changes = 0;
  const stop = watchConfig([dir], () => changes++, 20);
  t.after(() => {
    stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, changes: () => changes };
}

test('a watched directory reloads for its manifest files only, not for a database or spool written beside them', async (t) => {
  const { dir, changes } = watchedDir(t);
  writeFileSync(join(dir, 'tollgate.db'), 'x');
  writeFileSync(join(dir, 'tollgate.db-wal'), 'x');
  writeFileSync(join(dir, 'notes.txt'), 'x');
  await sleep(300);
  assert.equal(changes(), 0);
  writeFileSync(join(dir, 'models.yaml'), 'x');
  await waitFor(() => changes() === 1, 2000, 'the manifest change', 10);
});

test('a watched file reloads for itself, not for its neighbours', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-watch-'));
  const file = join(dir, 'apim.yaml');
  writeFileSync(file, 'x');
  let changes = 0;
  const stop = watchConfig([file], () => changes++, 20);
  t.after(() => {
    stop();
    rmSync(dir, { recursive: true, force: true });
  });
  writeFileSync(join(dir, 'other.yaml'), 'x');
  await sleep(300);
  assert.equal(changes, 0);
  writeFileSync(file, 'y');
  await waitFor(() => changes === 1, 2000, 'the file change', 10);
});

test("a ConfigMap volume's update (its ..data link swapped) reloads", async (t) => {
  const { dir, changes } = watchedDir(t);
  // What kubelet's atomic writer does: a new ..<timestamp> directory, a ..data_tmp link to it, renamed to ..data.
  mkdirSync(join(dir, '..2026_11_27_12_00_00.000'));
  symlinkSync('..2026_11_27_12_00_00.000', join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  await waitFor(() => changes() >= 1, 2000, 'the swap seen', 10);
});
