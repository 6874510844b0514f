// CSV rendering of stats rows (RFC 4180: a header line, quoted fields where needed, CRLF line ends).
import type { StatsRow, StatsValue } from './stats-sql.js';

function field(v: StatsValue): string {
  if (v === null) return '';
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function toCsv(columns: readonly string[], rows: readonly StatsRow[]): string {
  let out = columns.map(field).join(',') + '\r\n';
  for (const row of rows) out += columns.map((c) => field(row[c] ?? null)).join(',') + '\r\n';
  return out;
}
