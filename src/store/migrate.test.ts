// Migrations on every backend: applied once, idempotent on reopen, atomic on failure and on SIGKILL, safe when replicas start together.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sql, type Kysely } from 'kysely';
import { silentLogger, type Logger } from '../lib/logger.js';
import { parseDatabaseUrl } from './database-url.js';
import { LOCK_CLASS, LOCK_WAIT_LOG_MS, migrate } from './migrate.js';
import { openPostgres } from './postgres-connection.js';
import type { Tables } from './schema.js';
import { openSqlite } from './sqlite-connection.js';
import { MIGRATIONS } from './migrations/index.js';
import type { Database } from './database.js';
import { DATABASE_BACKENDS, type DatabaseBackend, type TestDatabase } from './test-databases.js';
import { waitFor } from '../sim/testing.js';
import { moduleArgs } from '../lib/module-child.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OPEN_DATABASE_MODULE = pathToFileURL(fileURLToPath(new URL('./open-database.ts', import.meta.url))).href;
const CUT_CHILD = new URL('./test-migrate-cut.ts', import.meta.url);

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

/** A bare connection, without openDatabase's migrations. */
function connect(target: TestDatabase): Kysely<Tables> {
  const parsed = parseDatabaseUrl(target.url);
  return parsed.dialect === 'sqlite' ? openSqlite(parsed.file) : openPostgres({ url: parsed.url, schema: target.schema }, silentLogger);
}

/** Runs test-migrate-cut.ts until its migration transaction reaches the cut, then SIGKILLs it there. */
async function killAtCut(target: TestDatabase, index: number, where: 'between' | 'inside'): Promise<void> {
  const child = spawn(process.execPath, [...moduleArgs(CUT_CHILD), target.url, target.schema ?? '', String(index), where], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  child.stdout.setEncoding('utf8');
  let said = '';
  for await (const text of child.stdout) {
    said += text;
    if (said.includes('cut\n')) break;
  }
  assert.equal(said, 'cut\n', 'the child reached the cut');
  child.kill('SIGKILL');
  const [, signal] = await exited;
  assert.equal(signal, 'SIGKILL');
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

    // A deploy killed mid-migration (OOM, a rollout's SIGKILL) must leave a database the next start can finish.
    for (const cut of [
      { where: 'between' as const, index: 1, upgrading: false, what: 'between two migrations of a new database' },
      { where: 'inside' as const, index: 2, upgrading: true, what: 'inside a migration, after its DDL and before its version row, of an older database' },
    ]) {
      test(`killed ${cut.what}, the next start applies every migration and the schema works`, async () => {
        await withFresh(backend, async (target) => {
          if (cut.upgrading) {
            // The database an older release left: only the migrations before the cut.
            const older = connect(target);
            try {
              await migrate(older, parseDatabaseUrl(target.url).dialect, target.schema, MIGRATIONS.slice(0, cut.index));
            } finally {
              await older.destroy();
            }
          }
          await killAtCut(target, cut.index, cut.where);
          const db = await target.open({ listen: false });
          try {
            assert.deepEqual(await appliedIds(db), MIGRATIONS.map((m) => m.id));
            await db.products.create({ name: 'after-the-kill' });
            await sql`select count(*) from analytics_records`.execute(db.kysely);
            await sql`select count(*) from oauth_access_tokens`.execute(db.kysely);
          } finally {
            await db.close();
          }
        });
      });
    }

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

const POSTGRES = DATABASE_BACKENDS.find((b) => b.name === 'postgres')!;

describe('postgres: the migration lock', { skip: POSTGRES.skip }, () => {
  test('a start waiting for the lock another session holds says so, and goes on once the lock is free', async () => {
    await withFresh(POSTGRES, async (target) => {
      const holder = connect(target);
      const waiter = connect(target);
      const warned: string[] = [];
      const logger = { warn: (_obj: object, msg: string) => warned.push(msg) } as unknown as Logger;
      let release!: () => void;
      let locked!: () => void;
      const held = new Promise<void>((r) => (locked = r));
      // A replica hung in its own start-up migration.
      const holding = holder.transaction().execute(async (trx) => {
        await sql`select pg_advisory_xact_lock(${LOCK_CLASS}, hashtext(${target.schema}))`.execute(trx);
        locked();
        await new Promise<void>((r) => (release = r));
      });
      try {
        await held;
        let settled = false;
        const migrating = migrate(waiter, 'postgres', target.schema, MIGRATIONS, logger).finally(() => (settled = true));
        await waitFor(() => warned.length > 0, LOCK_WAIT_LOG_MS + 5000, 'the waiting line');
        assert.deepEqual(warned, ['waiting for the migration lock held by another process']);
        assert.equal(settled, false, 'still waiting, not failed');
        release();
        await holding;
        assert.deepEqual(await migrating, MIGRATIONS.map((m) => m.name));
        assert.equal(warned.length, 1, 'said once');
      } finally {
        release?.();
        await holding.catch(() => {});
        await Promise.all([holder.destroy(), waiter.destroy()]);
      }
    });
  });
});
