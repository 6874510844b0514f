// The shape of one schema migration, and the column types that differ between SQLite and PostgreSQL.
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { DialectName } from '../database-url.js';

export interface Migration {
  /** Position in the list; applied in increasing order, each exactly once. */
  id: number;
  name: string;
  up(db: Kysely<any>, dialect: DialectName): Promise<void>;
}

export interface ColumnTypes {
  json: RawBuilder<unknown>;
  timestamp: RawBuilder<unknown>;
  bigint: RawBuilder<unknown>;
}

export function columnTypes(dialect: DialectName): ColumnTypes {
  const pg = dialect === 'postgres';
  return {
    json: sql.raw(pg ? 'jsonb' : 'text'),
    // ISO-8601 text sorts chronologically in SQLite, which has no timestamp type.
    timestamp: sql.raw(pg ? 'timestamptz' : 'text'),
    bigint: sql.raw(pg ? 'bigint' : 'integer'),
  };
}
