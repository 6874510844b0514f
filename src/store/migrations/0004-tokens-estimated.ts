// Migration 4: analytics_records.tokens_estimated, which tells a record whose tokens tollgate estimated (a stream cut
// before its usage chunk) from one whose model server reported them; earlier records were all reported.
import type { Kysely } from 'kysely';
import type { Migration } from './migration.js';

async function up(db: Kysely<any>): Promise<void> {
  // 0/1 like cache_hit and stream: better-sqlite3 cannot bind JavaScript booleans.
  await db.schema
    .alterTable('analytics_records')
    .addColumn('tokens_estimated', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}

export const tokensEstimated: Migration = { id: 4, name: 'tokens-estimated', up };
