// Migration 1: API-management tables (products, operation sets, manifests, developers, apps, credentials, KVMs, audit).
import { sql, type Kysely } from 'kysely';
import type { DialectName } from '../database-url.js';
import { columnTypes, type Migration } from './migration.js';

async function up(db: Kysely<any>, dialect: DialectName): Promise<void> {
  const t = columnTypes(dialect);
  const ownerCheck = sql`owner in ('file', 'api')`;

  await db.schema
    .createTable('api_products')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('approval_type', 'text', (c) => c.notNull().check(sql`approval_type in ('auto', 'manual')`))
    .addColumn('attributes', t.json, (c) => c.notNull())
    .addColumn('operation_sets', t.json, (c) => c.notNull())
    .addColumn('quota_limit', t.bigint)
    .addColumn('quota_interval', 'integer')
    .addColumn('quota_time_unit', 'text')
    .addColumn('scopes', t.json, (c) => c.notNull())
    .addColumn('owner', 'text', (c) => c.notNull().check(ownerCheck))
    .addColumn('spec', t.json, (c) => c.notNull())
    .addColumn('content_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addColumn('updated_at', t.timestamp, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('operation_sets')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('spec', t.json, (c) => c.notNull())
    .addColumn('owner', 'text', (c) => c.notNull().check(ownerCheck))
    .addColumn('content_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addColumn('updated_at', t.timestamp, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('manifests')
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('api_version', 'text', (c) => c.notNull())
    .addColumn('spec', t.json, (c) => c.notNull())
    .addColumn('owner', 'text', (c) => c.notNull().check(ownerCheck))
    .addColumn('content_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addColumn('updated_at', t.timestamp, (c) => c.notNull())
    .addPrimaryKeyConstraint('manifests_pk', ['kind', 'name'])
    .execute();

  await db.schema
    .createTable('developers')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('email', 'text', (c) => c.notNull())
    // Lower-cased in JavaScript: SQLite's lower() folds ASCII only, so a lower(email) index would disagree with it.
    .addColumn('email_key', 'text', (c) => c.notNull().unique())
    .addColumn('first_name', 'text', (c) => c.notNull())
    .addColumn('last_name', 'text', (c) => c.notNull())
    .addColumn('user_name', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('active', 'inactive')`))
    .addColumn('attributes', t.json, (c) => c.notNull())
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addColumn('updated_at', t.timestamp, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('apps')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('developer_id', 'text', (c) => c.notNull().references('developers.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('approved', 'revoked', 'pending')`))
    .addColumn('attributes', t.json, (c) => c.notNull())
    .addColumn('callback_url', 'text')
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addColumn('updated_at', t.timestamp, (c) => c.notNull())
    .addUniqueConstraint('apps_developer_name_unique', ['developer_id', 'name'])
    .execute();

  await db.schema
    .createTable('credentials')
    .addColumn('key_id', 'text', (c) => c.primaryKey())
    .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id').onDelete('cascade'))
    .addColumn('key_hash', 'text', (c) => c.notNull().unique())
    .addColumn('secret_hash', 'text')
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('approved', 'pending', 'revoked')`))
    .addColumn('api_products', t.json, (c) => c.notNull())
    .addColumn('issued_at', t.timestamp, (c) => c.notNull())
    .addColumn('expires_at', t.timestamp)
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('credentials_app_idx').on('credentials').columns(['app_id', 'created_at']).execute();

  await db.schema
    .createTable('kvm_entries')
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('map_name', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    // 0/1 rather than boolean: better-sqlite3 cannot bind JavaScript booleans.
    .addColumn('encrypted', 'integer', (c) => c.notNull())
    .addColumn('created_at', t.timestamp, (c) => c.notNull())
    .addColumn('updated_at', t.timestamp, (c) => c.notNull())
    .addPrimaryKeyConstraint('kvm_entries_pk', ['scope', 'map_name', 'key'])
    .execute();

  await db.schema
    .createTable('audit_log')
    .addColumn('id', dialect === 'postgres' ? 'bigserial' : 'integer', (c) =>
      dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
    )
    .addColumn('at', t.timestamp, (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('resource_type', 'text', (c) => c.notNull())
    .addColumn('resource_name', 'text', (c) => c.notNull())
    .addColumn('detail', t.json, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('audit_log_resource_idx').on('audit_log').columns(['resource_type', 'resource_name', 'id']).execute();
}

export const initial: Migration = { id: 1, name: 'initial', up };
