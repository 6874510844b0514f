// Kysely table types for every table this layer owns; later migrations extend `Tables` with theirs.
import type { ColumnType, Generated } from 'kysely';

/** JSON columns: jsonb on PostgreSQL (read back parsed), text on SQLite (read back as a string); written as JSON text. */
export type JsonColumn = ColumnType<unknown, string, string>;
/** Timestamps: timestamptz on PostgreSQL (read back as Date), ISO-8601 text on SQLite; written as ISO text. */
export type TimestampColumn = ColumnType<Date | string, string, string>;
export type NullableTimestampColumn = ColumnType<Date | string | null, string | null, string | null>;

export interface ApiProductsTable {
  name: string;
  display_name: string;
  description: string;
  approval_type: string;
  attributes: JsonColumn;
  operation_sets: JsonColumn;
  quota_limit: ColumnType<string | number | null, number | null, number | null>;
  quota_interval: ColumnType<number | null, number | null, number | null>;
  quota_time_unit: string | null;
  scopes: JsonColumn;
  owner: string;
  spec: JsonColumn;
  content_hash: string;
  created_at: TimestampColumn;
  updated_at: TimestampColumn;
}

export interface OperationSetsTable {
  name: string;
  spec: JsonColumn;
  owner: string;
  content_hash: string;
  created_at: TimestampColumn;
  updated_at: TimestampColumn;
}

export interface ManifestsTable {
  kind: string;
  name: string;
  api_version: string;
  spec: JsonColumn;
  owner: string;
  content_hash: string;
  created_at: TimestampColumn;
  updated_at: TimestampColumn;
}

export interface DevelopersTable {
  id: string;
  email: string;
  email_key: string;
  first_name: string;
  last_name: string;
  user_name: string;
  status: string;
  attributes: JsonColumn;
  created_at: TimestampColumn;
  updated_at: TimestampColumn;
}

export interface AppsTable {
  id: string;
  developer_id: string;
  name: string;
  status: string;
  attributes: JsonColumn;
  callback_url: string | null;
  created_at: TimestampColumn;
  updated_at: TimestampColumn;
}

export interface CredentialsTable {
  key_id: string;
  app_id: string;
  key_hash: string;
  secret_hash: string | null;
  status: string;
  api_products: JsonColumn;
  issued_at: TimestampColumn;
  expires_at: NullableTimestampColumn;
  created_at: TimestampColumn;
}

/** One row per product a key's grants name, kept by triggers (migration 6): read it, never write it. */
export interface CredentialProductsTable {
  apiproduct: string;
  key_id: string;
}

export interface KvmEntriesTable {
  scope: string;
  map_name: string;
  key: string;
  value: string;
  encrypted: number;
  created_at: TimestampColumn;
  updated_at: TimestampColumn;
}

export interface AuditLogTable {
  id: Generated<string | number>;
  at: TimestampColumn;
  actor: string;
  action: string;
  resource_type: string;
  resource_name: string;
  detail: JsonColumn;
}

/** One committed change, for the other processes on a SQLite file (migration 8; empty on PostgreSQL). */
export interface ChangeLogTable {
  seq: Generated<number>;
  /** The instanceId of the process that made it. */
  origin: string;
  /** encodeChange's text. */
  payload: string;
}

export interface MigrationsTable {
  id: number;
  name: string;
  applied_at: string;
}

export interface Tables {
  api_products: ApiProductsTable;
  operation_sets: OperationSetsTable;
  manifests: ManifestsTable;
  developers: DevelopersTable;
  apps: AppsTable;
  credentials: CredentialsTable;
  credential_products: CredentialProductsTable;
  kvm_entries: KvmEntriesTable;
  audit_log: AuditLogTable;
  change_log: ChangeLogTable;
  tollgate_migrations: MigrationsTable;
}
