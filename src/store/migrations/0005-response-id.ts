// Migration 5: analytics_records.response_id, the id of a Responses API answer a model server stored, so that any
// replica sharing the database (or this one after a restart) finds the endpoint holding it (stored-responses.ts).
import { sql, type Kysely } from 'kysely';
import type { DialectName } from '../database-url.js';
import type { Migration } from './migration.js';

async function up(db: Kysely<any>, dialect: DialectName): Promise<void> {
  await db.schema.alterTable('analytics_records').addColumn('response_id', 'text').execute();
  // Partial: nearly every record has none. With at_ms, one index serves the lookup and its order: on the id alone, a
  // PostgreSQL without statistics of the new column walked the at_ms index instead (355 ms at 2M rows, per unknown id).
  await db.schema
    .createIndex('analytics_records_response_id')
    .on('analytics_records')
    .columns(['response_id', 'at_ms'])
    .where(sql.ref('response_id'), 'is not', null)
    .execute();
  // Statistics now rather than at autovacuum's next turn (SQLite's planner takes the index without them).
  if (dialect === 'postgres') await sql`analyze analytics_records`.execute(db);
}

export const responseId: Migration = { id: 5, name: 'response-id', up };
