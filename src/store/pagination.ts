// Keyset pagination for list functions: { pageSize, pageToken } in, { items, nextPageToken } out.
import { setImmediate as loopTurn } from 'node:timers/promises';
import { sql, type Expression, type ExpressionBuilder, type SelectQueryBuilder, type SqlBool } from 'kysely';
import { isStorableText } from './codec.js';
import type { DialectName } from './database-url.js';
import { InvalidPageTokenError } from './errors.js';

export interface PageRequest {
  /** 1..1000, default 100 (out-of-range values are clamped). */
  pageSize?: number;
  /** The `nextPageToken` of the previous page. */
  pageToken?: string;
}

export interface Page<T> {
  items: T[];
  /** Absent on the last page. */
  nextPageToken?: string;
}

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

type KeyValue = string | number;

/** What a sort column holds: `text` unless said otherwise. */
export type KeyKind = 'text' | 'integer' | 'timestamp';

export interface SortOrder<Row> {
  /** Columns whose values together are unique; rows are ordered by them. */
  columns: readonly (keyof Row & string)[];
  /**
   * The columns that are not text. A token's values are checked against them, so a forged token (or one from
   * another listing) is a bad token rather than a value PostgreSQL refuses to compare with the column (a 500).
   */
  kinds?: Partial<Record<keyof Row & string, KeyKind>>;
  direction?: 'asc' | 'desc';
}

/**
 * Runs `query` one page at a time. Keyset (not OFFSET), so pages stay correct while rows are added or removed
 * and deep pages cost the same as the first. The token is base64url JSON of the last row's sort key: opaque to
 * clients, but not a secret.
 */
export async function paginate<Row extends Record<string, unknown>, Item>(
  query: SelectQueryBuilder<any, any, Row>,
  order: SortOrder<Row>,
  page: PageRequest,
  toItem: (row: Row) => Item,
): Promise<Page<Item>> {
  const size = clampPageSize(page.pageSize);
  const direction = order.direction ?? 'asc';
  let q = query;
  if (page.pageToken !== undefined) {
    const after = decodePageToken(page.pageToken, order.columns.map((c) => order.kinds?.[c] ?? 'text'));
    q = q.where((eb) => beyond(eb, order.columns, after, direction === 'asc' ? '>' : '<'));
  }
  for (const column of order.columns) q = q.orderBy(sql.ref(column), direction);
  const rows = await q.limit(size + 1).execute();
  const items = rows.slice(0, size);
  const last = items.at(-1);
  return rows.length > size && last
    ? { items: items.map(toItem), nextPageToken: encodePageToken(order.columns.map((c) => keyValue(last[c], order.kinds?.[c] ?? 'text'))) }
    : { items: items.map(toItem) };
}

/**
 * Rows per statement of readInPages: a few hundred milliseconds of reading and parsing, well within the store's
 * statement deadline (STATEMENT_DEADLINE_MS) on a busy host, and few enough statements that paging costs nothing.
 */
export const READ_PAGE_ROWS = 50_000;
/**
 * Rows per statement on SQLite, whose statements run on the event loop (better-sqlite3): tens of milliseconds each,
 * with an event-loop turn between them. 200,000 keys read 50,000 a statement, back to back, had held every request
 * for 4-5 s.
 */
export const SQLITE_READ_PAGE_ROWS = 5_000;

export const readPageRows = (dialect: DialectName): number => (dialect === 'sqlite' ? SQLITE_READ_PAGE_ROWS : READ_PAGE_ROWS);

/**
 * Every row of `query`, readPageRows(dialect) a statement, ordered by `columns`: unique together and the leading
 * columns of an index (the primary key), so each statement starts where the last one stopped instead of sorting the
 * table again. A table of millions of rows (the key-value entries policies write) took longer in one statement than
 * the store's statement deadline allows. Run it in one snapshot (Session.snapshot), so the pages are one consistent
 * view. Requests are served between pages; `progress` is called after each.
 */
export async function readInPages<Row extends Record<string, unknown>, Item>(
  query: SelectQueryBuilder<any, any, Row>,
  columns: readonly (keyof Row & string)[],
  toItem: (row: Row) => Item,
  { dialect, progress = () => {} }: { dialect: DialectName; progress?: () => void },
): Promise<Item[]> {
  const items: Item[] = [];
  for await (const rows of pagesOf(query, columns, readPageRows(dialect))) {
    for (const row of rows) items.push(toItem(row));
    progress();
  }
  return items;
}

/** readInPages' pages as they are read, `pageRows` rows each (the last may be shorter), for a reader that keeps none. */
export async function* pagesOf<Row extends Record<string, unknown>>(query: SelectQueryBuilder<any, any, Row>, columns: readonly (keyof Row & string)[], pageRows: number): AsyncGenerator<Row[]> {
  const ordered = columns.reduce((q, column) => q.orderBy(sql.ref(column)), query).limit(pageRows);
  // A row value, unlike beyond()'s OR of prefixes, is one index range to both PostgreSQL and SQLite (3.15 and later).
  const after = (last: Row) => sql<SqlBool>`(${sql.join(columns.map((c) => sql.ref(c)))}) > (${sql.join(columns.map((c) => last[c]))})`;
  for (let last: Row | undefined; ; ) {
    const rows = await (last ? ordered.where(after(last)) : ordered).execute();
    yield rows;
    if (rows.length < pageRows) return;
    last = rows[rows.length - 1];
    await loopTurn();
  }
}

/**
 * paginate over a list held in memory (the pools the endpoint picker knows), ordered by `keyOf`, which must be unique:
 * the same pages and tokens as a table's, so one client pages through both alike.
 * @example pageOfList(pools, (p) => p.name, { pageSize: 1 }) → { items: [the first pool by name], nextPageToken }
 */
export function pageOfList<T>(list: readonly T[], keyOf: (item: T) => string, page: PageRequest): Page<T> {
  const size = clampPageSize(page.pageSize);
  const after = page.pageToken === undefined ? undefined : (decodePageToken(page.pageToken, ['text'])[0] as string);
  const keyed = list.map((item) => ({ key: keyOf(item), item })).filter(({ key }) => after === undefined || key > after);
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const items = keyed.slice(0, size);
  const last = items.at(-1);
  return keyed.length > size && last ? { items: items.map((k) => k.item), nextPageToken: encodePageToken([last.key]) } : { items: items.map((k) => k.item) };
}

function clampPageSize(size: number | undefined): number {
  if (size === undefined || !Number.isFinite(size)) return DEFAULT_PAGE_SIZE;
  return Math.min(MAX_PAGE_SIZE, Math.max(1, Math.floor(size)));
}

/** (a, b) > (x, y) spelled out, since row-value comparison is not portable. */
function beyond(
  eb: ExpressionBuilder<any, any>,
  columns: readonly string[],
  values: KeyValue[],
  op: '>' | '<',
): Expression<SqlBool> {
  const alternatives = columns.map((column, i) =>
    eb.and([...columns.slice(0, i).map((c, j) => eb(sql.ref(c), '=', values[j])), eb(sql.ref(column), op, values[i])]),
  );
  return eb.or(alternatives);
}

function keyValue(value: unknown, kind: KeyKind): KeyValue {
  // PostgreSQL returns bigint columns as strings; the token holds the number either backend gives.
  if (kind === 'integer') return Number(value);
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'number' || typeof value === 'string') return value;
  return String(value);
}

function encodePageToken(values: KeyValue[]): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

/** Whether `v` is a value paginate could have handed out for a column of this kind. */
function fitsKind(v: unknown, kind: KeyKind): boolean {
  switch (kind) {
    case 'integer':
      // Digit strings too: tokens from PostgreSQL, which returns bigints as strings, once held those.
      return Number.isSafeInteger(typeof v === 'string' && /^-?\d{1,15}$/.test(v) ? Number(v) : v);
    case 'timestamp':
      // keyValue writes Date.toISOString(), and SQLite's timestamp columns hold the same canonical text.
      // Date.parse rolls an impossible date over (2020-02-30 is March 1st) and takes year 0, which PostgreSQL refuses.
      return typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(v) && !v.startsWith('0000') && isCanonicalTime(v);
    case 'text':
      return typeof v === 'string' && isStorableText(v);
  }
}

function isCanonicalTime(v: string): boolean {
  const t = Date.parse(v);
  return !Number.isNaN(t) && new Date(t).toISOString() === v;
}

function decodePageToken(token: string, kinds: readonly KeyKind[]): KeyValue[] {
  let values: unknown;
  try {
    values = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidPageTokenError();
  }
  const valid = Array.isArray(values) && values.length === kinds.length && values.every((v, i) => fitsKind(v, kinds[i]));
  if (!valid) throw new InvalidPageTokenError();
  return values as KeyValue[];
}
