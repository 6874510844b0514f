// CSV rendering of stats rows (RFC 4180: a header line, quoted fields where needed, CRLF line ends).
import type { StatsRow, StatsValue } from './stats-sql.js';

/**
 * Text a spreadsheet would run as a formula (CSV injection): model names, fault codes and endpoints come from
 * requests and configuration, and `=HYPERLINK(...)` in an export opened in Excel is code. OWASP's remedy: an
 * apostrophe before it, which spreadsheets show as text. Numbers are never prefixed. Where `;` separates fields
 * (Excel in much of Europe), `x;=1+1` is two cells unless quoted, so `;` is quoted like `,`; and for a reader that
 * splits on `,`, `;` or line ends regardless of quotes, every piece it would make is guarded, not only the first.
 */
const FORMULA = /^[=+\-@\t\r]/;
/**
 * A separator with a formula after it. The start of the field is checked apart: as one alternative of this regex, its
 * empty match before a leading CR let the scan step over that CR, which then guarded nothing (`\r=1` kept its `=`).
 */
const SEPARATED_FORMULA = /([,;\r\n])(?=[=+\-@\t\r])/g;

function guarded(s: string): string {
  const inner = s.replace(SEPARATED_FORMULA, "$1'");
  return FORMULA.test(inner) ? `'${inner}` : inner;
}

function field(v: StatsValue): string {
  if (v === null) return '';
  const s = typeof v === 'string' ? guarded(v) : String(v);
  return /[",;\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function toCsv(columns: readonly string[], rows: readonly StatsRow[]): string {
  let out = columns.map(field).join(',') + '\r\n';
  for (const row of rows) out += columns.map((c) => field(row[c] ?? null)).join(',') + '\r\n';
  return out;
}
