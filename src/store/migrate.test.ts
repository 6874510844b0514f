// Migrations on every backend: applied once, idempotent on reopen, atomic on failure, safe when replicas start together.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sql } from 'kysely';
import { migrate } from './migrate.js';
import { MIGRATIONS } from './migrations/index.js';
import type { Database } from './database.js';
import { DATABASE_BACKENDS, type DatabaseBackend, type TestDatabase } from './test-databases.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OPEN_DATABASE_MODULE = pathToFileURL(fileURLToPath(new URL('./open-database.ts', import.meta.url))).href;

async function appliedIds(db: Database): Promise<number[]> {
  const rows = await db.kysely.selectFrom('tollgate_migrations').select('id').orderBy('id').execute();
  return rows.map((r) => Number(r.id));
}

/** Runs `fn` on a fresh database and cleans up whatever happens. */
async function withFresh(backend: DatabaseBackend, fn: (target: TestDatabase) => Promise<void>): Promise<void> {
  const target = await backend.create();
  try {
    await fn(target);
  } finally {
    await target.dispose();
  }
}

/**
 * PostgreSQL replicas are separate pools: in-process opens race for real. SQLite replicas are separate processes
 * (one connection per file per process, see openDatabase), so race two child processes.
 */
async function openConcurrently(backend: DatabaseBackend, target: TestDatabase, count: number): Promise<void> {
  if (backend.name === 'postgres') {
    const dbs = await Promise.all(Array.from({ length: count }, () => target.open({ listen: false })));
    await Promise.all(dbs.map((db) => db.close()));
    return;
  }
  const code = `const { openDatabase } = await import(${JSON.stringify(OPEN_DATABASE_MODULE)});
    const db = await openDatabase(${JSON.stringify(target.url)}); await db.close();`;
  const exits = Array.from(
    { length: count },
    () =>
      new Promise<number | null>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: REPO_ROOT, stdio: 'inherit' });
        child.on('error', reject);
        child.on('exit', resolve);
      }),
  );
  assert.deepEqual(await Promise.all(exits), Array(count).fill(0));
}

for (const backend of DATABASE_BACKENDS) {
  describe(backend.name, { skip: backend.skip }, () => {
    test('applies every migration once; reopening applies nothing', async () => {
      await withFresh(backend, async (target) => {
        const db = await target.open();
        try {
          assert.deepEqual(await appliedIds(db), MIGRATIONS.map((m) => m.id));
          assert.deepEqual(await migrate(db.kysely, db.dialect, target.schema), []);
        } finally {
          await db.close();
        }
        const again = await target.open();
        try {
          assert.deepEqual(await appliedIds(again), MIGRATIONS.map((m) => m.id));
          await again.products.create({ name: 'still-works' });
        } finally {
          await again.close();
        }
      });
    });

    test('a failing migration leaves nothing behind', async () => {
      await withFresh(backend, async (target) => {
        const db = await target.open();
        try {
          const broken = {
            id: 9999,
            name: 'broken',
            async up(conn: typeof db.kysely) {
              await conn.schema.createTable('half_done').addColumn('id', 'integer').execute();
              throw new Error('boom');
            },
          };
          await assert.rejects(migrate(db.kysely, db.dialect, target.schema, [...MIGRATIONS, broken]), /boom/);
          await assert.rejects(sql`select * from half_done`.execute(db.kysely));
          assert.deepEqual(await appliedIds(db), MIGRATIONS.map((m) => m.id));
        } finally {
          await db.close();
        }
      });
    });

    test('replicas opening a new database at the same time all succeed', async () => {
      await withFresh(backend, async (target) => {
        await openConcurrently(backend, target, 3);
        const db = await target.open({ listen: false });
        try {
          assert.deepEqual(await appliedIds(db), MIGRATIONS.map((m) => m.id));
        } finally {
          await db.close();
        }
      });
    });
  });
}
