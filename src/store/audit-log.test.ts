// The audit log listed by resource name, on every backend: the rows it answers (a developer's email in any case, any
// other name exactly; newest first; page by page), and each such listing on audit_log_resource_name_idx (migration 7)
// rather than a scan of the table or of every row of the type.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CompiledQuery, sql, type KyselyPlugin, type RootOperationNode, type QueryId } from 'kysely';
import { silentLogger } from '../lib/logger.js';
import { AuditLog, insertAuditRow, type AuditFilter } from './audit-log.js';
import { ChangeFeed } from './change-feed.js';
import type { Database } from './database.js';
import type { PageRequest } from './pagination.js';
import { Session } from './session.js';
import { DATABASE_BACKENDS, openForSuite, type TestDatabase } from './test-databases.js';

const INDEX = 'audit_log_resource_name_idx';

for (const backend of DATABASE_BACKENDS) {
  describe(backend.name, { skip: backend.skip }, () => {
    let db: Database;
    let target: TestDatabase;
    openForSuite(backend, (opened, created) => {
      db = opened;
      target = created;
    });

    /** Writes one row per [type, name], in order (ids increase), among filler rows of other names. */
    async function write(rows: [string, string][]): Promise<void> {
      let i = 0;
      for (const [resourceType, resourceName] of rows) {
        for (const filler of ['developer', 'apiproduct', 'credential']) {
          await insertAuditRow(db.kysely, { at: new Date().toISOString(), actor: 'admin', action: 'update', resourceType: filler, resourceName: `${filler}-filler-${i++}` });
        }
        await insertAuditRow(db.kysely, { at: new Date().toISOString(), actor: 'admin', action: 'update', resourceType, resourceName });
      }
    }

    /** `type/name` of every row the listing answers, page by page at `pageSize`. */
    async function listed(filter: AuditFilter, pageSize: number): Promise<string[]> {
      const seen: string[] = [];
      const ids: number[] = [];
      let page: PageRequest = { pageSize };
      for (;;) {
        const { items, nextPageToken } = await db.audit.list(filter, page);
        for (const e of items) {
          seen.push(`${e.resourceType}/${e.resourceName}`);
          ids.push(e.id);
        }
        if (!nextPageToken) break;
        page = { pageSize, pageToken: nextPageToken };
      }
      assert.deepEqual(ids, [...ids].sort((a, b) => b - a), 'newest first');
      return seen;
    }

    /** The plan of the statement AuditLog.list runs for `filter` and `page`, as text (PostgreSQL told to avoid scans). */
    async function planOf(filter: AuditFilter, page: PageRequest = {}): Promise<string> {
      let statement: { node: RootOperationNode; queryId: QueryId } | undefined;
      const capture: KyselyPlugin = {
        transformQuery: (args) => ((statement = args), args.node),
        transformResult: async ({ result }) => result,
      };
      const session = new Session({ db: db.kysely.withPlugin(capture), dialect: db.dialect, feed: new ChangeFeed(silentLogger), instanceId: 'plan', schema: target.schema ?? 'main' }, 'admin');
      await new AuditLog(session).list(filter, page);
      const compiled = db.kysely.getExecutor().compileQuery(statement!.node, statement!.queryId);
      if (db.dialect === 'sqlite') {
        const { rows } = await db.kysely.executeQuery<{ detail: string }>(CompiledQuery.raw(`explain query plan ${compiled.sql}`, [...compiled.parameters]));
        return rows.map((r) => r.detail).join('\n');
      }
      // A table this small is read whole, index or not: with sequential scans priced out, the index the planner can
      // use is the one it shows.
      return db.kysely.transaction().execute(async (tx) => {
        await sql`set local enable_seqscan = off`.execute(tx);
        const { rows } = await tx.executeQuery<{ 'QUERY PLAN': string }>(CompiledQuery.raw(`explain ${compiled.sql}`, [...compiled.parameters]));
        return rows.map((r) => r['QUERY PLAN']).join('\n');
      });
    }

    test('by name, with or without a type: the same rows as before, newest first, page by page', async () => {
      await write([
        ['developer', 'Ada@Example.com'],
        ['apiproduct', 'prod-5'],
        ['developer', 'ada@example.com'],
        ['credential', 'prod-5'],
        ['apiproduct', 'Prod-5'],
        ['developer', 'ADA@EXAMPLE.COM'],
        ['app', 'ada@example.com'],
        ['apiproduct', 'prod-50'],
      ]);
      for (const pageSize of [1, 2, 100]) {
        // A developer by its email in any case.
        assert.deepEqual(await listed({ resourceType: 'developer', resourceName: 'ada@EXAMPLE.com' }, pageSize), ['developer/ADA@EXAMPLE.COM', 'developer/ada@example.com', 'developer/Ada@Example.com']);
        // Any other name exactly, with its type or in every type.
        assert.deepEqual(await listed({ resourceType: 'apiproduct', resourceName: 'prod-5' }, pageSize), ['apiproduct/prod-5']);
        assert.deepEqual(await listed({ resourceName: 'prod-5' }, pageSize), ['credential/prod-5', 'apiproduct/prod-5']);
        assert.deepEqual(await listed({ resourceName: 'ada@example.com' }, pageSize), ['app/ada@example.com', 'developer/ada@example.com']);
        assert.deepEqual(await listed({ resourceName: 'nobody' }, pageSize), []);
      }
    });

    test('by name, with or without a type, first page or a later one: on audit_log_resource_name_idx', async () => {
      const { nextPageToken } = await db.audit.list({}, { pageSize: 1 });
      for (const filter of [{ resourceName: 'prod-5' }, { resourceType: 'developer', resourceName: 'ADA@example.com' }]) {
        for (const page of [{}, { pageToken: nextPageToken }]) {
          const plan = await planOf(filter, page);
          assert.match(plan, new RegExp(INDEX), `${JSON.stringify(filter)} ${JSON.stringify(page)}:\n${plan}`);
          // Newest first straight from the index, not sorted afterwards.
          assert.doesNotMatch(plan, /TEMP B-TREE|Sort/, `${JSON.stringify(filter)} ${JSON.stringify(page)}:\n${plan}`);
        }
      }
    });
  });
}

// GatewaySettings `audit.retention` (apim/audit-retention.ts) on every backend.
for (const backend of DATABASE_BACKENDS) {
  describe(`${backend.name}: deleting rows past the retention`, { skip: backend.skip }, () => {
    let db: Database;
    openForSuite(backend, (opened) => (db = opened));
    const DAY = 86_400_000;
    const row = (at: number, name: string) => ({ at: new Date(at).toISOString(), actor: 'admin', action: 'update', resource_type: 'developer', resource_name: name, detail: '{}' });
    async function insert(rows: ReturnType<typeof row>[]): Promise<void> {
      for (let i = 0; i < rows.length; i += 1000) await db.kysely.insertInto('audit_log').values(rows.slice(i, i + 1000)).execute();
    }
    const names = async () => (await db.kysely.selectFrom('audit_log').select('resource_name').orderBy('id').execute()).map((r) => r.resource_name);

    test('the rows older than it, a chunk at a time, stepping over rows stamped out of order; none newer', async () => {
      const now = Date.now();
      // More than two chunks on either dialect (500 rows on SQLite, 5,000 on PostgreSQL), behind a row a replica
      // whose clock ran a year ahead wrote first, and with one a lagging clock stamped old written among new ones.
      const old = Array.from({ length: 10_100 }, (_, i) => row(now - 3 * DAY + i, `old-${i}`));
      await insert([row(now + 365 * DAY, 'future'), ...old, row(now - DAY / 2, 'recent'), row(now - 2 * DAY, 'old-written-late'), row(now, 'new')]);
      // One chunk, then told to stop.
      const first = await db.audit.deleteOlderThan(DAY, () => true);
      assert.ok(first > 0 && first < old.length, `one chunk: ${first}`);
      // Before: a sweep stopped at the first newer row, so the future one held everything behind it for a year.
      assert.equal(await db.audit.deleteOlderThan(DAY), old.length - first + 1);
      assert.deepEqual(await names(), ['future', 'recent', 'new']);
      assert.equal(await db.audit.deleteOlderThan(DAY), 0);
      // Not a whole number of milliseconds (`1.1d`): PostgreSQL refused it as a bigint, and every sweep failed.
      assert.equal(await db.audit.deleteOlderThan(1.1 * DAY / 4), 1);
      assert.deepEqual(await names(), ['future', 'new']);
    });
  });
}
