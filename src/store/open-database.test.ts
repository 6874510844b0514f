// Opening a SQLite file this process may not write: refused at once as the database that cannot be opened (a bad
// --db, exit 2), not opened read-only in silence to fail every admin write and usage record later.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { moduleArgs } from '../lib/module-child.js';
import { DatabaseOpenError } from './errors.js';
import { openDatabase } from './open-database.js';

const CHILD = new URL('./test-open-as-nobody.ts', import.meta.url);
const NOBODY = 65534;
const root = process.getuid?.() === 0;

test('a SQLite file this user may not write is refused when opened, as a database that cannot be opened', { skip: process.platform === 'win32' ? 'POSIX permissions' : undefined }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-readonly-'));
  const file = join(dir, 't.db');
  try {
    // An up-to-date file: nothing at start needs to write it.
    await (await openDatabase(`sqlite:${file}`)).close();
    // Its directory writable by all (SQLite makes its -wal and -shm files there), the file by its owner only.
    chmodSync(dir, 0o777);
    chmodSync(file, 0o644);
    if (root) {
      // Root writes any file: the owner is root, the one opening it another user (a container's UID changed).
      const { stdout } = await promisify(execFile)(process.execPath, [...moduleArgs(CHILD), file, String(NOBODY)]);
      const outcome = JSON.parse(stdout.trim()) as { opened: boolean; name?: string; message?: string };
      assert.equal(outcome.opened, false, 'opened a file it cannot write');
      assert.equal(outcome.name, 'DatabaseOpenError');
      assert.match(outcome.message!, /readonly database/);
    } else {
      chmodSync(file, 0o444);
      await assert.rejects(openDatabase(`sqlite:${file}`), (err: Error) => err instanceof DatabaseOpenError && /readonly database/.test(err.message));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
