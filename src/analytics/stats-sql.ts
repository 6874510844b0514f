// Runs a StatsQuery as one SQL statement that SQLite and PostgreSQL evaluate identically (integer buckets, window-function percentiles).
import { sql, type RawBuilder } from 'kysely';
import type { AnalyticsRecords } from '../store/index.js';
import { isoAtOffset } from './stats-time.js';
import { BUCKETS, DIMENSIONS, dimensionColumns, FILTER_FIELDS, MAX_ROWS, PERCENTILES, type Filter, type Metric, type StatsQuery } from './stats-query.js';

export type StatsValue = string | number | null;
export type StatsRow = Record<string, StatsValue>;

/**
 * Percentiles are nearest-rank (the ⌈p·n/100⌉-th smallest value, an actual sample), computed from ROW_NUMBER()
 * over each group: portable where PERCENTILE_CONT is PostgreSQL-only, and the rows never leave the database.
 * NULL ordering differs between the two (first in SQLite, last in PostgreSQL), so TTFT ranks put NULLs last explicitly.
 */
function percentileSql(metric: Metric): RawBuilder<unknown> | undefined {
  const m = /^(latency|ttft)_(p\d+)$/.exec(metric);
  if (!m) return undefined;
  const p = sql.lit(PERCENTILES[m[2] as keyof typeof PERCENTILES]);
  const [value, rank, n] = m[1] === 'latency' ? ['latency_ms', 'l_rank', 'l_n'] : ['ttft_ms', 't_rank', 't_n'];
  return sql`max(case when ${sql.ref(rank)} = (${sql.ref(n)} * ${p} + 99) / 100 then ${sql.ref(value)} end)`;
}

/**
 * Model servers report the token counts (each stored up to 2^53), so a sum can pass 2^63: SQLite's integer sum()
 * then fails with "integer overflow" where PostgreSQL's exact numeric goes on. Summed as doubles on both, as the
 * answer's JSON numbers are anyway: exact below 2^53, and close to each other above.
 */
function tokenSum(column: RawBuilder<unknown>): RawBuilder<unknown> {
  return sql`coalesce(sum(cast(${column} as double precision)), 0)`;
}

const AGGREGATES: Partial<Record<Metric, RawBuilder<unknown>>> = {
  requests: sql`count(*)`,
  errors: sql`sum(case when status >= 400 or fault_code is not null then 1 else 0 end)`,
  input_tokens: tokenSum(sql`input_tokens`),
  output_tokens: tokenSum(sql`output_tokens`),
  cached_tokens: tokenSum(sql`cached_tokens`),
  total_tokens: sql`${tokenSum(sql`input_tokens`)} + ${tokenSum(sql`output_tokens`)}`,
  cache_hits: sql`sum(cache_hit)`,
  estimated_usage: sql`sum(tokens_estimated)`,
  bytes_in: sql`sum(bytes_in)`,
  bytes_out: sql`sum(bytes_out)`,
  latency_avg: sql`avg(latency_ms)`,
};

function filterSql(f: Filter): RawBuilder<unknown> {
  const ref = sql.ref(FILTER_FIELDS[f.field]);
  if (f.value === null) return f.op === '==' ? sql`${ref} is null` : sql`${ref} is not null`;
  // A developer is known by its email in any case (the admin API finds and refuses duplicates so). Emails are ASCII
  // (the admin API takes no other): the value is folded here, ASCII letters only, as SQLite's lower() folds the column;
  // PostgreSQL's lower() would also fold the value's non-ASCII letters (a Kelvin sign to k) and match where SQLite does not.
  const [col, value] = f.field === 'developer' ? [sql`lower(${ref})`, sql`${String(f.value).replace(/[A-Z]+/g, (m) => m.toLowerCase())}`] : [ref, sql`${f.value}`];
  return f.op === '==' ? sql`${col} = ${value}` : sql`(${ref} is null or ${col} <> ${value})`;
}

/** null sorts last; strings by code unit, since database collations differ between the two backends. */
function compare(a: StatsValue, b: StatsValue): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  return a < b ? -1 : 1;
}

function toNumber(v: unknown): number | null {
  return v === null || v === undefined ? null : Number(v);
}

function text(v: unknown): string | null {
  return v === null || v === undefined ? null : String(v);
}

/** The answer's rows, or how many there would be when that is more than MAX_ROWS. */
export type StatsResult = { rows: StatsRow[] } | { tooManyRows: number };

/**
 * Rows `{ bucket_start, <dimensions>, <metrics> }`, ordered by bucket then dimensions; empty buckets are absent.
 * Over MAX_ROWS, only the count: the database says how many groups there are, and at most MAX_ROWS come back.
 */
export async function runStats(records: AnalyticsRecords, q: StatsQuery): Promise<StatsResult> {
  const size = sql.lit(BUCKETS[q.bucket]);
  const dims = q.groupBy.map((_, i) => `d${i}`);
  // An app or a developer is grouped by its id (stats-query), and shown with the name or email of the group's newest
  // record: an email can change. Record ids are UUIDv7, whose lowercase hex sorts alike in every collation.
  const dimSelect = q.groupBy.map((d, i) => sql`, ${sql.ref(DIMENSIONS[d].id ?? DIMENSIONS[d].column)} as ${sql.id(dims[i])}`);
  const names = q.groupBy.flatMap((d, i) => (DIMENSIONS[d].id ? [sql`, ${sql.ref(`newest.${DIMENSIONS[d].column}`)} as ${sql.id(`n${i}`)}`] : []));
  const named = names.length > 0;
  const where = [sql`at_ms >= ${q.from}`, sql`at_ms < ${q.to}`, ...q.filters.map(filterSql)];
  const group = sql.join([sql.id('bucket_start'), ...dims.map((d) => sql.id(d))]);
  const metricSql = q.metrics.map((m, i) => sql`, ${percentileSql(m) ?? AGGREGATES[m]!} as ${sql.id(`m${i}`)}`);
  const ranked = q.metrics.some((m) => percentileSql(m) !== undefined);

  // Integer division truncates toward zero on both backends; the bucket of a time before 1970 starts before it.
  // Buckets start at the caller's midnight and hour (tzo): the time is shifted by the offset for the modulo.
  const shifted = sql`(at_ms + ${sql.lit(q.offsetMinutes * 60_000)})`;
  const base = sql`select at_ms - (${shifted} % ${size} + ${size}) % ${size} as bucket_start${sql.join(dimSelect, sql``)},
    ${named ? sql`id, ` : sql``}status, fault_code, input_tokens, output_tokens, cached_tokens, cache_hit, tokens_estimated, bytes_in, bytes_out, latency_ms, ttft_ms
    from analytics_records where ${sql.join(where, sql` and `)}`;
  const source = ranked
    ? sql`(select b.*,
        row_number() over (partition by ${group} order by latency_ms) as l_rank,
        count(*) over (partition by ${group}) as l_n,
        row_number() over (partition by ${group} order by case when ttft_ms is null then 1 else 0 end, ttft_ms) as t_rank,
        count(ttft_ms) over (partition by ${group}) as t_n
      from (${base}) as b)`
    : sql`(${base})`;
  const grouped = sql`select ${group}${named ? sql`, max(id) as newest_id` : sql``}${sql.join(metricSql, sql``)}, count(*) over () as n_rows
    from ${source} as r group by ${group} limit ${sql.lit(MAX_ROWS)}`;
  const query = named
    ? sql<Record<string, unknown>>`select g.*${sql.join(names, sql``)} from (${grouped}) as g left join analytics_records as newest on newest.id = g.newest_id`
    : sql<Record<string, unknown>>`${grouped}`;
  const { rows } = await query.execute(records.kysely);
  const count = rows.length === 0 ? 0 : Number(rows[0].n_rows);
  if (count > MAX_ROWS) return { tooManyRows: count };

  const out = rows.map((r) => {
    const row: StatsRow = { bucket_start: Number(r.bucket_start) };
    q.groupBy.forEach((d, i) => {
      const value = d === 'status' ? toNumber(r[dims[i]]) : text(r[dims[i]]);
      if (DIMENSIONS[d].id) {
        row[d] = text(r[`n${i}`]);
        row[`${d}_id`] = value;
      } else row[d] = value;
    });
    q.metrics.forEach((m, i) => {
      const v = toNumber(r[`m${i}`]);
      row[m] = v === null || m !== 'latency_avg' ? v : Math.round(v * 1000) / 1000;
    });
    return row;
  });
  out.sort((a, b) => {
    for (const key of ['bucket_start', ...dimensionColumns(q.groupBy)]) {
      const c = compare(a[key], b[key]);
      if (c !== 0) return c;
    }
    return 0;
  });
  for (const row of out) row.bucket_start = isoAtOffset(row.bucket_start as number, q.offsetMinutes);
  return { rows: out };
}
