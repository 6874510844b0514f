// Migration 5: analytics_records.response_id, the id of a Responses API answer a model server stored, so that any
// replica sharing the database (or this one after a restart) finds the endpoint holding it (stored-responses.ts).
import { sql, type Kysely } from 'kysely';
import type { Migration } from './migration.js';

async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('analytics_records').addColumn('response_id', 'text').execute();
  // Partial: nearly every record has none, and only ids are looked up.
  await db.schema
    .createIndex('analytics_records_response_id')
    .on('analytics_records')
    .column('response_id')
    .where(sql.ref('response_id'), 'is not', null)
    .execute();
}

export const responseId: Migration = { id: 5, name: 'response-id', up };
