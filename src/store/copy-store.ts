// Copying a gateway's whole store into an empty one (SQLite to PostgreSQL as a deployment grows to replicas, or back):
// products, developers, apps, keys (their hashes: the keys themselves were never stored), key-value maps, the audit
// log, OAuth tokens and usage records, so every consumer's key keeps working on the new store.
import { sql, type Kysely } from 'kysely';
import type { Database } from './database.js';
import { pagesOf } from './pagination.js';
import type { Tables } from './schema.js';

/** Each table copied, parents before the tables whose rows name them, with its primary key (the order pages follow). */
const COPIED_TABLES: readonly { table: string; key: readonly string[] }[] = [
  { table: 'api_products', key: ['name'] },
  { table: 'operation_sets', key: ['name'] },
  { table: 'manifests', key: ['kind', 'name'] },
  { table: 'developers', key: ['id'] },
  { table: 'apps', key: ['id'] },
  { table: 'credentials', key: ['key_id'] },
  { table: 'kvm_entries', key: ['scope', 'map_name', 'key'] },
  { table: 'audit_log', key: ['id'] },
  { table: 'oauth_access_tokens', key: ['token_hash'] },
  { table: 'analytics_records', key: ['id'] },
];
// Not copied: tollgate_migrations (each store has its own), credential_products (triggers fill it from credentials),
// change_log (one SQLite file's notices to its processes) and the caches (refilled as requests come).

/** Rows read and written at a time: a page of usage records stays well under PostgreSQL's 65,535 parameters. */
const PAGE_ROWS = 500;

type Row = Record<string, unknown>;

/** The store to copy into holds rows already: copying would mix two gateways' data. */
export class TargetNotEmptyError extends Error {}

/**
 * A value as the other backend takes it: PostgreSQL reads jsonb as objects and timestamptz as Dates, SQLite stores
 * both as text; bigint comes back as a string from PostgreSQL, which either backend takes for an integer.
 */
function portable(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value)) return JSON.stringify(value);
  return value;
}

/** Tables of the copied set that hold any row in `db`, for the refusal. */
async function tablesWithRows(db: Kysely<Tables> | Kysely<any>): Promise<string[]> {
  const k = db as unknown as Kysely<Record<string, Row>>;
  const found: string[] = [];
  for (const { table } of COPIED_TABLES) {
    if ((await k.selectFrom(table).select(sql`1`.as('one')).limit(1).execute()).length > 0) found.push(table);
  }
  return found;
}

/**
 * Copies every table of `from` into `to`, in one transaction on `to` (a failure leaves it empty). Both are opened
 * (and so migrated) by the caller; `to` must hold no row of these tables. Returns the rows copied per table.
 * @throws TargetNotEmptyError when `to` holds rows.
 */
export async function copyStore(from: Database, to: Database, onTable?: (table: string, rows: number) => void): Promise<Record<string, number>> {
  const copied: Record<string, number> = {};
  await to.kysely.transaction().execute(async (trx) => {
    // Checked in the transaction that writes: nothing can fill the target between the check and the copy.
    const present = await tablesWithRows(trx);
    if (present.length > 0) throw new TargetNotEmptyError(`the target store already holds rows (${present.join(', ')}); copy into a new, empty database or schema`);
    const into = trx as unknown as Kysely<Record<string, Row>>;
    // The source read as one snapshot: a process still writing to it cannot leave a key without its app in the copy.
    await from.readConsistently(async (source) => {
      for (const { table, key } of COPIED_TABLES) await copyTable(source, into, table, key, (rows) => {
        copied[table] = rows;
        onTable?.(table, rows);
      });
    });
    // The audit log's ids were copied as they were: PostgreSQL's sequence must go on after them, not collide with them
    // (SQLite's AUTOINCREMENT follows the largest id inserted by itself).
    if (to.dialect === 'postgres') await sql`select setval(pg_get_serial_sequence('audit_log', 'id'), coalesce((select max(id) from audit_log), 0) + 1, false)`.execute(trx);
  });
  return copied;
}

/** Copies one table a page at a time, in key order (its primary key's index); `done` is told how many rows. */
async function copyTable(source: Kysely<Tables>, into: Kysely<Record<string, Row>>, table: string, key: readonly string[], done: (rows: number) => void): Promise<void> {
  let rows = 0;
  const query = (source as unknown as Kysely<Record<string, Row>>).selectFrom(table).selectAll();
  for await (const batch of pagesOf(query, key, PAGE_ROWS)) {
    if (batch.length === 0) break;
    await into.insertInto(table).values(batch.map((r) => Object.fromEntries(Object.entries(r).map(([c, v]) => [c, portable(v)])))).execute();
    rows += batch.length;
  }
  done(rows);
}
