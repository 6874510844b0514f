// The snapshot's reads of the tables that grow with use, on every backend: in pages of rows, each statement well within
// the store's statement deadline however big the table, and the pages one consistent view.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, type KyselyPlugin } from 'kysely';
import { silentLogger } from '../lib/logger.js';
import { ChangeFeed } from './change-feed.js';
import { StoreView, type Database } from './database.js';
import { READ_PAGE_ROWS, readPageRows } from './pagination.js';
import { Session } from './session.js';
import { DATABASE_BACKENDS, type TestDatabase } from './test-databases.js';

/** Keys (with their apps and developers) and key-value entries: more than one page of each on every backend. */
const KEYS = READ_PAGE_ROWS + 1;
const ENTRIES = 2 * READ_PAGE_ROWS + 1;

/** Rows 1..n of a table, made by the database itself: inserting 60,000 rows one by one would take minutes. */
async function seed(db: Database): Promise<void> {
  const now = new Date().toISOString();
  const numbers = (n: number) => (db.dialect === 'postgres' ? sql`generate_series(1, ${n}) as g(n)` : sql`(with recursive g(n) as (select 1 union all select n + 1 from g where n < ${n}) select n from g)`);
  const json = (text: string) => (db.dialect === 'postgres' ? sql`${text}::jsonb` : sql`${text}`);
  await sql`insert into developers (id, email, email_key, first_name, last_name, user_name, status, attributes, created_at, updated_at)
    select 'dev' || n, 'd' || n || '@x.io', 'd' || n || '@x.io', 'F', 'L', 'u' || n, 'active', ${json('[]')}, ${now}, ${now} from ${numbers(KEYS)}`.execute(db.kysely);
  await sql`insert into apps (id, developer_id, name, status, attributes, callback_url, created_at, updated_at)
    select 'app' || n, 'dev' || n, 'app', 'approved', ${json('[]')}, null, ${now}, ${now} from ${numbers(KEYS)}`.execute(db.kysely);
  await sql`insert into credentials (key_id, app_id, key_hash, secret_hash, status, api_products, issued_at, expires_at, created_at)
    select 'key' || n, 'app' || n, 'hash' || n, null, 'approved', ${json('[]')}, ${now}, null, ${now} from ${numbers(KEYS)}`.execute(db.kysely);
  await sql`insert into kvm_entries (scope, map_name, key, value, encrypted, created_at, updated_at)
    select 'environment', 'm', 'user-' || n, 'v', 0, ${now}, ${now} from ${numbers(ENTRIES)}`.execute(db.kysely);
}

/** A view of `db` whose every answer is handed to `seen` (its rows) before the reader gets it. */
function watched(db: Database, target: TestDatabase, seen: (rows: readonly Record<string, unknown>[]) => Promise<void> | void): StoreView {
  const plugin: KyselyPlugin = {
    transformQuery: ({ node }) => node,
    transformResult: async ({ result }) => {
      await seen(result.rows as Record<string, unknown>[]);
      return result;
    },
  };
  const core = { db: db.kysely.withPlugin(plugin), dialect: db.dialect, feed: new ChangeFeed(silentLogger), instanceId: 'test', schema: target.schema ?? 'main' };
  return new StoreView(new Session(core, 'test'));
}

for (const backend of DATABASE_BACKENDS) {
  describe(backend.name, { skip: backend.skip }, () => {
    let target: TestDatabase;
    let db: Database;

    before(async () => {
      target = await backend.create();
      db = await target.open({ listen: false });
      await seed(db);
    });

    after(async () => {
      await db?.close();
      await target?.dispose();
    });

    test('a snapshot reads the big tables a page of rows a statement, tells of each page, and lets requests in between', async () => {
      let most = 0;
      let pages = 0;
      // Turns of the event loop while it reads: on SQLite its statements run on the loop, and read back to back they
      // had held every request for the whole read (4-5 s at 200,000 keys).
      let turns = 0;
      let reading = true;
      const turn = () => {
        turns++;
        if (reading) setImmediate(turn);
      };
      setImmediate(turn);
      const snapshot = await watched(db, target, (rows) => void (most = Math.max(most, rows.length))).loadSnapshot(() => pages++);
      reading = false;
      const rows = readPageRows(db.dialect);
      assert.equal(snapshot.developers.length, KEYS);
      assert.equal(snapshot.apps.length, KEYS);
      assert.equal(snapshot.credentials.length, KEYS);
      assert.equal(snapshot.kvmEntries.length, ENTRIES);
      assert.equal(new Set(snapshot.kvmEntries.map((e) => e.key)).size, ENTRIES, 'no entry read twice');
      // Before: one statement a table, which at 1.5 million entries outlasted the statement deadline (5 s) every time.
      assert.equal(most, rows);
      const pagesOf = (n: number) => Math.floor(n / rows) + 1;
      assert.equal(pages, 3 * pagesOf(KEYS) + pagesOf(ENTRIES));
      assert.ok(turns >= pages - 4, `${turns} turns of the event loop in ${pages} pages`);
    });

    test('the pages of every entry are one view: what is written between them is not part of it', async () => {
      const writer = await target.open({ listen: false });
      try {
        let wrote = false;
        const entries = await watched(db, target, async (rows) => {
          if (wrote || rows.length !== readPageRows(db.dialect)) return;
          wrote = true;
          // After the first page: an entry added past it, and one of a later page removed.
          await writer.kvm.put({ scope: 'environment', mapName: 'm', key: 'zz-late', value: 'v' });
          await writer.kvm.delete('environment', 'm', 'user-9999');
        }).kvm.listAll();
        assert.ok(wrote);
        const keys = new Set(entries.map((e) => e.key));
        assert.equal(keys.size, ENTRIES);
        assert.ok(keys.has('user-9999') && !keys.has('zz-late'));
      } finally {
        await writer.close();
      }
    });
  });
}
