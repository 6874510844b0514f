// Database backends for the shared store test suite: SQLite always, PostgreSQL when DATABASE_URL is set.
import { mkdtemp, rm } from 'node:fs/promises';
import { after, before } from 'node:test';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBase62 } from './keys.js';
import { openDatabase, type OpenDatabaseOptions } from './open-database.js';
import type { Database } from './database.js';

/** One isolated database (a temp SQLite file, or a fresh PostgreSQL schema) that tests may open several times. */
export interface TestDatabase {
  url: string;
  schema?: string;
  open(opts?: OpenDatabaseOptions): Promise<Database>;
  /** Removes the file or drops the schema; call after closing everything opened. */
  dispose(): Promise<void>;
}

export interface DatabaseBackend {
  name: 'sqlite' | 'postgres';
  /** Set when the backend is unavailable, so the suite is reported as skipped rather than silently absent. */
  skip?: string;
  create(): Promise<TestDatabase>;
}

const DATABASE_URL = process.env.DATABASE_URL;

export const DATABASE_BACKENDS: DatabaseBackend[] = [
  {
    name: 'sqlite',
    async create() {
      const dir = await mkdtemp(join(tmpdir(), 'tollgate-store-'));
      const url = `sqlite:${join(dir, 'test.db')}`;
      return { url, open: (opts) => openDatabase(url, opts), dispose: () => rm(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'postgres',
    skip: DATABASE_URL ? undefined : 'DATABASE_URL not set',
    async create() {
      const url = DATABASE_URL!;
      const schema = `test_${randomBase62(12).toLowerCase()}`;
      return {
        url,
        schema,
        open: (opts) => openDatabase(url, { ...opts, schema }),
        async dispose() {
          const db = await openDatabase(url, { schema, listen: false });
          await db.dropSchema();
          await db.close();
        },
      };
    },
  },
];

/**
 * A fresh database of `backend` for the suite this is called in: created and opened before its tests (handed to
 * `opened`), closed and removed after them.
 * @example let db: Database; openForSuite(backend, (opened) => (db = opened));
 */
export function openForSuite(backend: DatabaseBackend, opened: (db: Database, target: TestDatabase) => void): void {
  let target: TestDatabase | undefined;
  let db: Database | undefined;
  before(async () => {
    target = await backend.create();
    db = await target.open();
    opened(db, target);
  });
  after(async () => {
    await db?.close();
    await target?.dispose();
  });
}
