// `tollgate analytics`: query a running gateway's GET /v1/analytics/stats and print a table (or its JSON or CSV).
import { Command, InvalidArgumentError, Option } from 'commander';
import { BUCKETS, DIMENSIONS, METRICS, statsColumns } from '../analytics/stats-query.js';
import { parseDuration } from '../lib/duration.js';
import { adminOption, adminUrl, callAdmin, failCommand, processIo as commandIo, type CommandIo } from './admin-client.js';
import { collect } from './options.js';

/** Where the command writes and what it reads from the environment (tests pass their own). */
export interface AnalyticsIo extends CommandIo {
  now(): number;
}

const processIo: AnalyticsIo = { ...commandIo, now: Date.now };

interface Options {
  admin: string;
  from?: string;
  to?: string;
  since?: number;
  bucket: string;
  tzo?: string;
  groupBy?: string[];
  metrics?: string[];
  filter?: string[];
  format: 'table' | 'json' | 'csv';
}

type Cell = string | number | null;

interface StatsAnswer {
  groupBy: string[];
  metrics: string[];
  rows: Record<string, Cell>[];
  newestRecordAt: string | null;
  lagSeconds: number | null;
}

function isStatsAnswer(body: unknown): boolean {
  const answer = body as Partial<StatsAnswer> | null;
  const fresh = answer?.newestRecordAt === null || (typeof answer?.newestRecordAt === 'string' && typeof answer.lagSeconds === 'number');
  return fresh && Array.isArray(answer.groupBy) && Array.isArray(answer.metrics) && Array.isArray(answer.rows) && answer.rows.every((r) => typeof r === 'object' && r !== null);
}

/** Further back than this is before the earliest time a Date holds: toISOString would throw (exit 1, "Invalid time value"). */
const MAX_SINCE_MS = 8.64e15;

function parseSince(value: string): number {
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  if (ms > MAX_SINCE_MS) throw new InvalidArgumentError(`"${value}" reaches back further than a date can (at most about 270,000 years)`);
  return ms;
}

const DEFAULT_METRICS = ['requests', 'errors', 'input_tokens', 'output_tokens'];

function statsUrl(opts: Options, now: number): URL {
  const url = adminUrl(opts.admin, 'v1/analytics/stats');
  const q = url.searchParams;
  if (opts.since !== undefined) {
    q.set('from', new Date(now - opts.since).toISOString());
    q.set('to', new Date(now).toISOString());
  }
  if (opts.from !== undefined) q.set('from', opts.from);
  if (opts.to !== undefined) q.set('to', opts.to);
  q.set('bucket', opts.bucket);
  if (opts.tzo !== undefined) q.set('tzo', opts.tzo);
  // Repeated flags add up, as kubectl's do: a second --group-by silently replaced the first.
  if (opts.groupBy) q.set('groupBy', opts.groupBy.join(','));
  q.set('metrics', (opts.metrics ?? DEFAULT_METRICS).join(','));
  // One parameter each, as written: a flag's escaped '\;' cannot run into the next one.
  for (const f of opts.filter ?? []) q.append('filter', f);
  q.set('format', opts.format === 'csv' ? 'csv' : 'json');
  return url;
}

/**
 * Control characters (C0, DEL, C1), bidirectional controls and line separators: model names and the like come from
 * clients, and raw in a terminal a newline forges a row, an escape sequence drives the terminal, and an override
 * reverses the text. The backslash is escaped too, so what is shown reads back one way.
 */
const UNPRINTABLE = /[\\\p{Cc}\p{Bidi_Control}\u2028\u2029]/gu;
const NAMED: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** A newline becomes the two characters `\n`, ESC the text `\u{1b}`, a backslash two of them. */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => NAMED[c] ?? `\\u{${c.codePointAt(0)!.toString(16)}}`);
}

/** One decimal from 1 up; below it two significant digits, so a sub-millisecond average is not shown as 0.0. */
function numberText(v: number): string {
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 1 ? v.toFixed(1) : String(Number(v.toPrecision(2)));
}

function cellText(v: Cell | undefined): string {
  if (v === null || v === undefined) return '-';
  return typeof v === 'number' ? numberText(v) : printable(String(v));
}

/** Columns padded to their widest cell; numbers right-aligned. */
export function renderTable(columns: string[], rows: Record<string, Cell>[]): string[] {
  const head = columns.map(printable);
  const cells = rows.map((r) => columns.map((c) => cellText(r[c])));
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i].length)));
  const numeric = columns.map((c) => rows.some((r) => typeof r[c] === 'number'));
  const line = (values: string[]) =>
    values.map((v, i) => (numeric[i] ? v.padStart(widths[i]) : v.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)];
}

/** How far behind the newest stored record is, so a quiet hour can be told from a pipeline that is behind. */
function freshness(newestRecordAt: string, lagSeconds: number): string {
  return `newest record ${newestRecordAt} (${lagSeconds.toFixed(1)} s ago)`;
}

/**
 * @example tollgate analytics --since 6h --bucket 1h --group-by app,model --metrics requests,errors,latency_p99
 * The lead's main() adds it with `program.addCommand(analyticsCommand().exitOverride())`.
 */
export function analyticsCommand(io: AnalyticsIo = processIo): Command {
  return new Command('analytics')
    .description('usage figures from a running gateway (GET /v1/analytics/stats), by time bucket and dimension')
    .addOption(adminOption())
    .option('--from <time>', 'start: ISO-8601 with a zone (2025-01-31T12:00:00Z, ...+02:00) or epoch ms (default: 24 h before --to)')
    .option('--to <time>', 'end: ISO-8601 with a zone or epoch ms (default: now)')
    // Both ways of giving the range at once left one to win silently.
    .addOption(new Option('--since <duration>', 'start this long ago, e.g. 30m, 6h, 7d (instead of --from and --to)').argParser(parseSince).conflicts(['from', 'to']))
    .addOption(new Option('--bucket <size>', 'time bucket').choices(Object.keys(BUCKETS)).default('1h'))
    .option('--tzo <offset>', 'UTC offset where hour and day buckets start, and at which times are shown: +05:30, -0800, or minutes east of UTC (default: Z)')
    .option('--group-by <dimensions>', `comma-separated (repeatable): ${Object.keys(DIMENSIONS).join(', ')} (an app or developer by its id, shown beside its name)`, collect)
    .option('--metrics <names>', `comma-separated (repeatable): ${METRICS.join(', ')} (default: ${DEFAULT_METRICS.join(',')})`, collect)
    .option('--filter <dimension==value>', 'keep only matching records (also !=; app_id and developer_id too; app==NAME needs developer==EMAIL; repeatable; \\; for a ; in a value)', collect)
    .addOption(new Option('--format <format>', 'output').choices(['table', 'json', 'csv']).default('table'))
    .action(async (opts: Options) => {
      const url = statsUrl(opts, io.now());
      const { status, headers, text, body, error } = await callAdmin('analytics', io, url, { expect: opts.format === 'csv' ? { csv: true } : { shape: isStatsAnswer } });
      if (status !== 200) {
        // A 400 is a bad option value, like a bad flag: exit code 2.
        failCommand('analytics', io, status === 400 ? 2 : 1, [
          `the gateway refused the query (HTTP ${status}): ${error?.message ?? (text.trim() || 'no error message')}`,
          ...(error?.details ?? []).map((d) => `${d.path ?? ''}: ${d.message ?? ''}`),
        ]);
      }
      if (opts.format !== 'table') {
        io.out(text.trimEnd());
        // The JSON carries them; CSV has no room for them, and the gateway sends them as headers ('none' without
        // records): on stderr, so that stdout stays the CSV.
        const newest = headers['x-tollgate-newest-record-at'];
        if (opts.format === 'csv' && typeof newest === 'string' && newest !== 'none') io.err(freshness(newest, Number(headers['x-tollgate-lag-seconds'])));
        return;
      }
      const answer = body as StatsAnswer;
      if (answer.rows.length === 0) io.out('no records in this range');
      else for (const line of renderTable(statsColumns(answer.groupBy, answer.metrics), answer.rows)) io.out(line);
      if (answer.newestRecordAt !== null) {
        io.out('');
        io.out(freshness(answer.newestRecordAt, answer.lagSeconds!));
      }
    });
}
