import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs, { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { pino } from 'pino';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../sim/testing.js';
import { configFingerprint, watchConfig } from './watch.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fresh directory watched for the test's length; `changes()` counts the reloads it asked for. */
function watchedDir(t: TestContext): { dir: string; changes: () => number } {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-watch-'));
  let changes = 0;
  // Polled often, so a poll that took other files for a change would show within the test.
  const stop = watchConfig([dir], () => changes++, { debounceMs: 20, pollMs: 50 });
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
  writeFileSync(join(dir, 'tollgate.db-journal'), 'x');
  rmSync(join(dir, 'tollgate.db-journal'));
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
  const stop = watchConfig([file], () => changes++, { debounceMs: 20 });
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

test('a watched file of a ConfigMap volume (a link through ..data) reloads when ..data is swapped', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-watch-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const version = (n: number) => {
    const d = `..2026_11_27_12_00_0${n}.000`;
    mkdirSync(join(dir, d));
    writeFileSync(join(dir, d, 'models.yaml'), `version ${n}`);
    symlinkSync(d, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  };
  version(1);
  symlinkSync('..data/models.yaml', join(dir, 'models.yaml'));
  let changes = 0;
  // No poll within the test: the swap's own events must do (they name ..data, never models.yaml).
  const stop = watchConfig([join(dir, 'models.yaml')], () => changes++, { debounceMs: 20, pollMs: 60_000 });
  t.after(stop);
  await sleep(100);
  version(2);
  await waitFor(() => changes >= 1, 2000, 'the swap seen', 10);
});

test('a watched directory replaced by another (renamed away, or its symlink repointed) is followed to the new one', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'tollgate-watch-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  for (const r of ['1', '2', '3']) {
    mkdirSync(join(root, r));
    writeFileSync(join(root, r, 'models.yaml'), `release ${r}`);
  }
  symlinkSync('1', join(root, 'current'));
  let changes = 0;
  const stop = watchConfig([join(root, 'current')], () => changes++, { debounceMs: 20, pollMs: 50 });
  t.after(stop);
  await sleep(100);
  // A release switch: the link repointed atomically. The watch had followed it to 1 and heard nothing.
  symlinkSync('2', join(root, 'next'));
  renameSync(join(root, 'next'), join(root, 'current'));
  await waitFor(() => changes === 1, 2000, 'the repointed link seen', 10);
  // Edits in the new target are heard: the watch was opened again on it.
  writeFileSync(join(root, '2', 'models.yaml'), 'release 2, edited');
  await waitFor(() => changes === 2, 2000, 'the edit in the new target', 10);
  // A directory renamed away and another put in its place.
  const plain = join(root, 'conf');
  mkdirSync(plain);
  writeFileSync(join(plain, 'models.yaml'), 'a');
  let plainChanges = 0;
  const stopPlain = watchConfig([plain], () => plainChanges++, { debounceMs: 20, pollMs: 50 });
  t.after(stopPlain);
  await sleep(100);
  renameSync(plain, join(root, 'conf.old'));
  renameSync(join(root, '3'), plain);
  await waitFor(() => plainChanges >= 1, 2000, 'the replaced directory seen', 10);
  const after = plainChanges;
  writeFileSync(join(plain, 'models.yaml'), 'b');
  await waitFor(() => plainChanges > after, 2000, 'an edit in the replacement', 10);
});

test('a change made after the files were read and before the watch began (during a start) reloads at once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-watch-'));
  writeFileSync(join(dir, 'models.yaml'), 'm1');
  const loaded = configFingerprint([dir]);
  // A size of its own: the file's time alone may not move within the file system's time resolution.
  writeFileSync(join(dir, 'models.yaml'), 'm1 and m2');
  let changes = 0;
  // No poll within the test: before, nothing after the watch began would ever have said so.
  const stop = watchConfig([dir], () => changes++, { since: loaded, debounceMs: 20, pollMs: 60_000 });
  t.after(() => {
    stop();
    rmSync(dir, { recursive: true, force: true });
  });
  await waitFor(() => changes === 1, 2000, 'the change made before the watch', 10);
  // The files as they are when the watch begins: nothing to reload.
  let unchanged = 0;
  const stopUnchanged = watchConfig([dir], () => unchanged++, { since: configFingerprint([dir]), debounceMs: 20, pollMs: 60_000 });
  t.after(stopUnchanged);
  await sleep(100);
  assert.equal(unchanged, 0);
});

test('out of descriptors, the fingerprint is no answer rather than a change: nothing reloads, and a change made meanwhile still does', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-watch-'));
  writeFileSync(join(dir, 'models.yaml'), 'm1');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let changes = 0;
  const stop = watchConfig([dir], () => changes++, { debounceMs: 20, pollMs: 30 });
  t.after(stop);
  // Every path lookup fails as in a process with no descriptor left (realpath opens none, but readdir does).
  const starve = () => {
    const shortage = () => {
      throw Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' });
    };
    const mocks = [t.mock.method(fs, 'realpathSync', shortage), t.mock.method(fs, 'readdirSync', shortage)];
    syncBuiltinESMExports();
    return {
      looks: () => mocks[0].mock.callCount(),
      restore: () => {
        for (const m of mocks) m.mock.restore();
        syncBuiltinESMExports();
      },
    };
  };
  let starved = starve();
  assert.equal(configFingerprint([dir]), undefined);
  // The poll (every 30 ms) looks several times while starved.
  await waitFor(() => starved.looks() > 4, 2000, 'polls while starved', 10);
  starved.restore();
  await sleep(200);
  // Before: "unreadable" was a change, and so was the return of the real fingerprint: two reloads of unchanged files.
  assert.equal(changes, 0);
  starved = starve();
  await waitFor(() => starved.looks() > 2, 2000, 'polls while starved again', 10);
  starved.restore();
  writeFileSync(join(dir, 'models.yaml'), 'm1 and m2');
  await waitFor(() => changes === 1, 2000, 'the change made once descriptors are free', 10);
});

for (const code of ['EACCES', 'ENOENT', 'ENOSPC']) {
  test(`a watch that cannot be opened (${code}) is logged once, the poll goes on, and the watch opens once it can`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-watch-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    // fs.watch throws, as for a directory made unreadable (a root process is not refused), one removed between the
    // stat and the watch, or a host out of inotify watches. Before, it was thrown from the poll's timer when the
    // fingerprint moved (and so ended the process), or from watchConfig itself.
    const refusing = t.mock.method(fs, 'watch', () => {
      throw Object.assign(new Error(`${code}: watch ${dir}`), { code });
    });
    syncBuiltinESMExports();
    t.after(() => {
      refusing.mock.restore();
      syncBuiltinESMExports();
    });
    const logs: { msg: string; error?: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
    let changes = 0;
    const stop = watchConfig([dir], () => changes++, { debounceMs: 20, pollMs: 50, logger });
    t.after(stop);
    writeFileSync(join(dir, 'models.yaml'), 'one');
    await waitFor(() => changes === 1, 2000, 'the change found by the poll', 10);
    writeFileSync(join(dir, 'models.yaml'), 'one, two');
    await waitFor(() => changes === 2, 2000, 'the next change found by the poll', 10);
    const cannot = logs.filter((l) => l.msg.startsWith('cannot watch'));
    assert.equal(cannot.length, 1, 'logged once');
    assert.match(cannot[0].error!, new RegExp(code));

    refusing.mock.restore();
    syncBuiltinESMExports();
    writeFileSync(join(dir, 'models.yaml'), 'one, two, three');
    await waitFor(() => logs.some((l) => l.msg === 'watching a --config path again'), 2000, 'the watch opened again', 10);
    await waitFor(() => changes === 3, 2000, 'the change', 10);
  });
}
