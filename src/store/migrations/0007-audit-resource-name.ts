// Migration 7: the audit log listed by resource name (GET /v1/audit?resourceName=, with or without resourceType) on an
// index. audit_log_resource_idx leads with the type, so a name alone scanned the table, and a developer's rows, found
// by lower(resource_name) (an email in any case), scanned every developer row: 0.4-0.6 s a call at 1M rows.
import { sql, type Kysely } from 'kysely';
import type { DialectName } from '../database-url.js';
import type { Migration } from './migration.js';

async function up(db: Kysely<any>, dialect: DialectName): Promise<void> {
  // On the expression AuditLog.list filters by (both backends index an expression the query repeats exactly), then
  // the id it orders by: newest first is a walk backwards from the name, pages included.
  await sql`create index audit_log_resource_name_idx on audit_log (lower(resource_name), id)`.execute(db);
  // PostgreSQL keeps statistics of an indexed expression only from its next analyze: taken now, not at autovacuum's.
  if (dialect === 'postgres') await sql`analyze audit_log`.execute(db);
}

export const auditResourceName: Migration = { id: 7, name: 'audit-resource-name', up };
