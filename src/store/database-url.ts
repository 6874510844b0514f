// Parses the `--db` URL: `sqlite:FILE`, `sqlite::memory:` or `postgres://...` / `postgresql://...`.
import { DatabaseConfigError, redactUrl } from './errors.js';

export type DialectName = 'sqlite' | 'postgres';

/** `schema`: PostgreSQL's `?schema=NAME`, taken out of the URL the driver gets (which would ignore it). */
export type DatabaseTarget = { dialect: 'sqlite'; file: string } | { dialect: 'postgres'; url: string; schema?: string };

export const DEFAULT_DATABASE_URL = 'sqlite:./tollgate.db';

export function parseDatabaseUrl(url: string): DatabaseTarget {
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return postgresTarget(url);
  if (url.startsWith('sqlite:')) {
    // Accept sqlite://path too, a common spelling for file URLs.
    const file = url.slice('sqlite:'.length).replace(/^\/\//, '');
    if (file === '') throw new DatabaseConfigError(`database URL "${url}" names no file (use sqlite:FILE or sqlite::memory:)`);
    return { dialect: 'sqlite', file };
  }
  throw new DatabaseConfigError(`unsupported database URL "${redactUrl(url)}" (expected sqlite:FILE or postgres://...)`);
}

/**
 * `?schema=NAME` keeps tollgate's tables in that schema (created if missing), as Prisma and Hasura spell it: several
 * gateways (staging beside production, a team per schema) share one database. The driver knows no such parameter and
 * ignored it, so every tollgate given one used `public`. Given twice, or as something other than a plain identifier,
 * it is refused rather than guessed at.
 */
function postgresTarget(url: string): DatabaseTarget {
  const q = url.indexOf('?');
  if (q < 0) return { dialect: 'postgres', url };
  const params = url.slice(q + 1).split('&');
  const named = params.filter((p) => p === 'schema' || p.startsWith('schema='));
  if (named.length === 0) return { dialect: 'postgres', url };
  if (named.length > 1) throw new DatabaseConfigError('the database URL names its schema more than once');
  let schema: string;
  try {
    schema = decodeURIComponent(named[0].slice('schema='.length));
  } catch {
    throw new DatabaseConfigError(`the database URL's schema "${named[0].slice('schema='.length)}" is not valid percent-encoding`);
  }
  const rest = params.filter((p) => p !== named[0]);
  return { dialect: 'postgres', url: url.slice(0, q) + (rest.length > 0 ? '?' + rest.join('&') : ''), schema: checkSchemaName(schema) };
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
