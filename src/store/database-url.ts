// Parses the `--db` URL: `sqlite:FILE`, `sqlite::memory:` or `postgres://...` / `postgresql://...`.
import { DatabaseConfigError } from './errors.js';

export type DialectName = 'sqlite' | 'postgres';

export type DatabaseTarget = { dialect: 'sqlite'; file: string } | { dialect: 'postgres'; url: string };

export const DEFAULT_DATABASE_URL = 'sqlite:./tollgate.db';

export function parseDatabaseUrl(url: string): DatabaseTarget {
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return { dialect: 'postgres', url };
  if (url.startsWith('sqlite:')) {
    // Accept sqlite://path too, a common spelling for file URLs.
    const file = url.slice('sqlite:'.length).replace(/^\/\//, '');
    if (file === '') throw new DatabaseConfigError(`database URL "${url}" names no file (use sqlite:FILE or sqlite::memory:)`);
    return { dialect: 'sqlite', file };
  }
  throw new DatabaseConfigError(`unsupported database URL "${url}" (expected sqlite:FILE or postgres://...)`);
}

/** Whether the URL names SQLite's private in-memory database, which no other connection (or thread) can open. */
export function isMemoryDatabase(url: string): boolean {
  const target = parseDatabaseUrl(url);
  return target.dialect === 'sqlite' && target.file === ':memory:';
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Schema names are interpolated into DDL and connection options, so only plain identifiers are allowed. */
export function checkSchemaName(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) {
    throw new DatabaseConfigError(`invalid schema name "${schema}" (lower-case letters, digits and _, at most 63)`);
  }
  return schema;
}
