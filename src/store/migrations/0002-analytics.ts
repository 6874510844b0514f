// Migration 2: analytics_records, one row per finished request, keyed by tollgate's own record id.
import type { Kysely } from 'kysely';
import type { DialectName } from '../database-url.js';
import { columnTypes, type Migration } from './migration.js';

async function up(db: Kysely<any>, dialect: DialectName): Promise<void> {
  const t = columnTypes(dialect);
  const double = dialect === 'postgres' ? 'double precision' : 'real';
  await db.schema
    .createTable('analytics_records')
    // The record id (UUIDv7), not the client's x-request-id: replays after a crash insert it ON CONFLICT DO NOTHING.
    .addColumn('id', 'text', (c) => c.primaryKey())
    // Epoch milliseconds rather than a timestamp type, so time buckets are the same integer arithmetic on both backends.
    .addColumn('at_ms', t.bigint, (c) => c.notNull())
    .addColumn('request_id', 'text', (c) => c.notNull())
    .addColumn('developer_id', 'text')
    .addColumn('developer_email', 'text')
    .addColumn('app_id', 'text')
    .addColumn('app_name', 'text')
    .addColumn('product', 'text')
    .addColumn('operation_set', 'text')
    .addColumn('key_id', 'text')
    .addColumn('operation', 'text')
    .addColumn('model', 'text')
    .addColumn('target_model', 'text')
    .addColumn('endpoint', 'text')
    .addColumn('priority', 'integer', (c) => c.notNull())
    .addColumn('status', 'integer')
    .addColumn('fault_code', 'text')
    .addColumn('latency_ms', double, (c) => c.notNull())
    .addColumn('ttft_ms', double)
    // Null when the model server reported no usage, which monetization must tell apart from zero.
    .addColumn('input_tokens', t.bigint)
    .addColumn('output_tokens', t.bigint)
    .addColumn('cached_tokens', t.bigint)
    // 0/1: better-sqlite3 cannot bind JavaScript booleans.
    .addColumn('cache_hit', 'integer', (c) => c.notNull())
    .addColumn('stream', 'integer', (c) => c.notNull())
    .addColumn('bytes_in', t.bigint, (c) => c.notNull())
    .addColumn('bytes_out', t.bigint, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('analytics_records_at_idx').on('analytics_records').column('at_ms').execute();
}

export const analytics: Migration = { id: 2, name: 'analytics', up };
