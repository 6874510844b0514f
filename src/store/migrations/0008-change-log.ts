// Migration 8: change_log, how processes sharing one SQLite file learn of each other's changes (PostgreSQL has NOTIFY,
// so there the table stays empty). Each committed change writes one row in its own transaction; every process polls
// for rows after the last it read (sqlite-change-poller.ts). Without it a key revoked through one process kept
// working on another until that one restarted.
import type { Kysely } from 'kysely';
import type { DialectName } from '../database-url.js';
import type { Migration } from './migration.js';

async function up(db: Kysely<any>, dialect: DialectName): Promise<void> {
  // AUTOINCREMENT: a rolled-back change takes its number back, so committed rows are numbered without gaps and a
  // reader can tell rows pruned before it read them (a gap) from rows never written.
  await db.schema
    .createTable('change_log')
    .addColumn('seq', dialect === 'sqlite' ? 'integer' : 'bigserial', (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
    .addColumn('origin', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .execute();
}

export const changeLog: Migration = { id: 8, name: 'change-log', up };
