// CSV rendering of stats rows (RFC 4180: a header line, quoted fields where needed, CRLF line ends).
import type { StatsRow, StatsValue } from './stats-sql.js';

/**
 * Text a spreadsheet would run as a formula (CSV injection): model names, fault codes and endpoints come from
 * requests and configuration, and `=HYPERLINK(...)` in an export opened in Excel is code. OWASP's remedy: a
 * leading apostrophe, which spreadsheets show as text. Numbers are never prefixed. Where `;` separates fields (Excel
 * in much of Europe), `x;=1+1` is two cells unless quoted, so `;` is quoted like `,`, and a formula after a `;`
 * is guarded too, for a reader that splits on it regardless of quotes.
 */
const FORMULA = /(?:^|;)[=+\-@\t\r]/;

function field(v: StatsValue): string {
  if (v === null) return '';
  const s = typeof v === 'string' && FORMULA.test(v) ? `'${v}` : String(v);
  return /[",;\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function toCsv(columns: readonly string[], rows: readonly StatsRow[]): string {
  let out = columns.map(field).join(',') + '\r\n';
  for (const row of rows) out += columns.map((c) => field(row[c] ?? null)).join(',') + '\r\n';
  return out;
}
