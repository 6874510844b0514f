// The stats query language: time range, bucket, dimensions, metrics and filters, validated into a StatsQuery.
import { z } from 'zod';
import { commaList } from '../lib/comma-list.js';
import { isStorableText, UNSTORABLE_TEXT_MESSAGE } from '../store/codec.js';
import { MAX_TIME_MS, parseOffset, parseTime } from './stats-time.js';

/**
 * Dimension → the column a row shows for it: `developer` is the developer's email and `app` the app's name, as Apigee
 * reports them. Neither names one developer or app for good: an app's name is unique only among its developer's apps,
 * and an email can change (a PUT renames the developer) or pass to a new developer. So those two are grouped by their
 * `id` column, and a row shows the id (`app_id`, `developer_id`) beside the name. A product's name is its key.
 */
export const DIMENSIONS: Record<Dimension, { column: string; id?: string }> = {
  developer: { column: 'developer_email', id: 'developer_id' },
  app: { column: 'app_name', id: 'app_id' },
  product: { column: 'product' },
  model: { column: 'model' },
  target_model: { column: 'target_model' },
  operation: { column: 'operation' },
  endpoint: { column: 'endpoint' },
  status: { column: 'status' },
  fault: { column: 'fault_code' },
};
export type Dimension = 'developer' | 'app' | 'product' | 'model' | 'target_model' | 'operation' | 'endpoint' | 'status' | 'fault';

/** What a filter names: a dimension, or the id shown beside one. */
export type FilterField = Dimension | 'developer_id' | 'app_id';

/** Filter field → its column. */
export const FILTER_FIELDS = Object.fromEntries(
  Object.entries(DIMENSIONS).flatMap(([d, { column, id }]) => [[d, column], ...(id ? [[`${d}_id`, id]] : [])]),
) as Record<FilterField, string>;

/** The columns a row has for its dimensions, in order: `groupBy=app,model` → app, app_id, model. */
export function dimensionColumns(groupBy: readonly string[]): string[] {
  return groupBy.flatMap((d) => (Object.hasOwn(DIMENSIONS, d) && DIMENSIONS[d as Dimension].id ? [d, `${d}_id`] : [d]));
}

/** Every column of a row, in order (CSV's header, the table's): the bucket, its dimensions' columns, the metrics. */
export function statsColumns(groupBy: readonly string[], metrics: readonly string[]): string[] {
  return ['bucket_start', ...dimensionColumns(groupBy), ...metrics];
}

export const PERCENTILES = { p50: 50, p90: 90, p95: 95, p99: 99 } as const;
export const SUM_METRICS = ['requests', 'errors', 'input_tokens', 'output_tokens', 'cached_tokens', 'total_tokens', 'cache_hits', 'estimated_usage', 'bytes_in', 'bytes_out'] as const;
export const PERCENTILE_METRICS = (['latency', 'ttft'] as const).flatMap((m) =>
  (Object.keys(PERCENTILES) as (keyof typeof PERCENTILES)[]).map((p) => `${m}_${p}` as const),
);
export const METRICS = [...SUM_METRICS, 'latency_avg', ...PERCENTILE_METRICS] as const;
export type Metric = (typeof METRICS)[number];

export const BUCKETS = { '1m': 60_000, '5m': 300_000, '15m': 900_000, '1h': 3_600_000, '1d': 86_400_000 } as const;
export type Bucket = keyof typeof BUCKETS;

/**
 * Rows in one answer: groupBy multiplies the buckets (70,000 rows were 53 MB of JSON and 550 MB of memory). The only
 * limit on a range's size: empty buckets are never made, so 1m over a quiet week costs what its records cost.
 */
export const MAX_ROWS = 10_000;
const DEFAULT_RANGE_MS = 24 * 3_600_000;

export interface Filter {
  field: FilterField;
  op: '==' | '!=';
  /** null matches records without a value (`app==`). */
  value: string | number | null;
}

export interface StatsQuery {
  from: number;
  to: number;
  bucket: Bucket;
  /** Minutes east of UTC where hour and day buckets start, and at which times are written (`tzo`). */
  offsetMinutes: number;
  groupBy: Dimension[];
  metrics: Metric[];
  filters: Filter[];
  format: 'json' | 'csv';
}

export interface FieldProblem {
  path: string;
  message: string;
}

const timestamp = z.string().transform((text, ctx) => {
  const ms = parseTime(text);
  if (ms !== undefined) return ms;
  ctx.addIssue({ code: 'custom', message: `"${text}" is not a time (ISO-8601 with a zone, e.g. 2025-01-31T12:00:00Z or 2025-01-31T14:00:00+02:00, or epoch milliseconds)` });
  return z.NEVER;
});

const offset = z.string().transform((text, ctx) => {
  const minutes = parseOffset(text);
  if (minutes !== undefined) return minutes;
  ctx.addIssue({ code: 'custom', message: `"${text}" is not a UTC offset (Z, +05:30, -0800, or minutes east of UTC such as 330 or -480; at most 14 hours either way; in a URL, + is written %2B)` });
  return z.NEVER;
});

/** `a,b,c` → each checked against `names`, so an unknown name is reported as `metrics[2]`. */
function list<const T extends readonly string[]>(names: T) {
  return z
    .string()
    .transform(commaList)
    .pipe(z.array(z.enum(names)));
}

/** Space around the dimension and the operator is dropped; the value is taken as given (`model== x ` is " x "). */
const FILTER = /^\s*([a-z_]+)\s*(==|!=)(.*)$/s;

/** `a==1;b==2` → its clauses; `\;` is a `;` inside a value and `\\` a backslash. */
function clauses(param: string): string[] {
  const out = [''];
  for (let i = 0; i < param.length; i++) {
    const c = param[i];
    if (c === '\\' && (param[i + 1] === ';' || param[i + 1] === '\\')) out[out.length - 1] += param[++i];
    else if (c === ';') out.push('');
    else out[out.length - 1] += c;
  }
  return out;
}

/** One clause, or the problem with it. */
function filterOf(part: string): Filter | string {
  const m = FILTER.exec(part);
  if (!m) return `"${part}" is not dimension==value or dimension!=value`;
  const [, field, op, raw] = m;
  // Own keys only: `in` would take "constructor" or "__proto__" for a dimension.
  if (!Object.hasOwn(FILTER_FIELDS, field)) return `unknown dimension "${field}" (one of ${Object.keys(FILTER_FIELDS).join(', ')})`;
  if (field !== 'status' || raw === '') return { field: field as FilterField, op: op as Filter['op'], value: raw === '' ? null : raw };
  if (!/^\d{3}$/.test(raw)) return `status must be a 3-digit HTTP status, not "${raw}"`;
  return { field, op: op as Filter['op'], value: Number(raw) };
}

/**
 * An app's name picks one app only among one developer's apps: a name clause without a developer== or developer_id==
 * clause beside it would add up every developer's app of that name, so it is refused rather than guessed at.
 */
function namesDeveloper(f: Filter): boolean {
  return (f.field === 'developer' || f.field === 'developer_id') && f.op === '==' && f.value !== null;
}

/** Each `filter` parameter holds one clause or several separated by `;`; paths number the clauses of all of them. */
const filters = z
  .array(z.string())
  .transform((params) => params.flatMap(clauses).filter((f) => f.trim() !== ''))
  .transform((parts, ctx): Filter[] => {
    const parsed = parts.map(filterOf);
    const out = parsed.filter((f): f is Filter => typeof f !== 'string');
    const ownerNamed = out.some(namesDeveloper);
    parsed.forEach((f, i) => {
      if (typeof f === 'string') ctx.addIssue({ code: 'custom', path: [i], message: f });
      else if (f.field === 'app' && f.value !== null && !ownerNamed) {
        ctx.addIssue({
          code: 'custom',
          path: [i],
          message: 'app names are unique only per developer: add developer==<email> (or developer_id==<id>), or pick the app by app_id==<id>',
        });
      }
    });
    return out;
  });

const schema = z
  .object({
    from: timestamp.optional(),
    to: timestamp.optional(),
    bucket: z.enum(Object.keys(BUCKETS) as [Bucket, ...Bucket[]]).default('1h'),
    tzo: offset.default(0),
    groupBy: list(Object.keys(DIMENSIONS) as Dimension[]).default([]),
    metrics: list(METRICS).default(['requests']),
    filter: filters.default([]),
    format: z.enum(['json', 'csv']).default('json'),
  })
  .strict();

function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

/**
 * Reads `?from=&to=&bucket=&tzo=&groupBy=&metrics=&filter=&format=`; the range defaults to the 24 hours before `to`
 * (default now). Returns the problems, each with its parameter path, instead of throwing.
 * @example parseStatsQuery(new URLSearchParams('groupBy=app,model&metrics=requests,latency_p99&filter=product==gold'))
 */
export function parseStatsQuery(params: URLSearchParams, now: number = Date.now()): { query: StatsQuery } | { problems: FieldProblem[] } {
  // PostgreSQL refuses NUL and unpaired surrogates in a query parameter with an error, which would be a 500.
  const unstorable = new Set<string>();
  for (const [k, v] of params) if (!isStorableText(k) || !isStorableText(v)) unstorable.add(isStorableText(k) ? k : '(query)');
  if (unstorable.size > 0) return { problems: [...unstorable].map((path) => ({ path, message: UNSTORABLE_TEXT_MESSAGE })) };
  // Without a prototype, so `__proto__=` is a parameter like any other (and refused as unknown).
  const raw: Record<string, string | string[]> = Object.create(null);
  // Repeated parameters add up: lists are joined with ','; filters stay apart, so a clause's `;` cannot run into the next.
  for (const [k, v] of params) {
    if (k === 'filter') raw[k] = [...((raw[k] as string[] | undefined) ?? []), v];
    else raw[k] = Object.hasOwn(raw, k) ? `${raw[k] as string},${v}` : v;
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    return {
      problems: parsed.error.issues.map((i) => ({
        path: i.code === 'unrecognized_keys' ? i.keys.join(',') : fieldPath(i.path) || '(query)',
        message: i.code === 'unrecognized_keys' ? `unknown parameter (known: ${Object.keys(schema.shape).join(', ')})` : i.message,
      })),
    };
  }
  const p = parsed.data;
  const to = p.to ?? now;
  const from = p.from ?? to - DEFAULT_RANGE_MS;
  const problems: FieldProblem[] = [];
  // The default range reaches 24 h before `to`, which can fall before the earliest time a Date holds.
  if (from < -MAX_TIME_MS) problems.push({ path: 'to', message: 'is too early for the default range of 24 hours before it; give from' });
  else if (from > to) problems.push({ path: 'from', message: `from (${new Date(from).toISOString()}) is after to (${new Date(to).toISOString()})` });
  // Written at the offset, a time at the edge of what a Date holds would go past it (toISOString throws: a 500).
  else if (Math.max(Math.abs(from), Math.abs(to)) + Math.abs(p.tzo) * 60_000 > MAX_TIME_MS) problems.push({ path: 'tzo', message: 'puts from or to beyond the latest time a date can hold; give an earlier range or no tzo' });
  if (p.metrics.length === 0) problems.push({ path: 'metrics', message: 'name at least one metric' });
  if (new Set(p.groupBy).size !== p.groupBy.length) problems.push({ path: 'groupBy', message: 'a dimension is named twice' });
  if (problems.length > 0) return { problems };
  return { query: { from, to, bucket: p.bucket, offsetMinutes: p.tzo, groupBy: p.groupBy, metrics: [...new Set(p.metrics)], filters: p.filter, format: p.format } };
}
