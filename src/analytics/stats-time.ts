// The stats API's times: strict ISO-8601 date-times with a zone, or epoch milliseconds; Date.parse guesses at anything.
/** The largest time a Date holds (±100,000,000 days from 1970); the answer writes from and to as ISO-8601. */
export const MAX_TIME_MS = 8.64e15;

/**
 * `2025-01-31T12:00Z`, `2025-01-31T12:00:00.5+02:00`, and the six-digit signed years toISOString writes beyond 0–9999
 * (the CLI's `--since 100000y`). A zone is required: without one, Date.parse takes the server's local time.
 */
const DATE_TIME = /^([+-]\d{6}|\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?(?:Z|([+-])(\d\d):(\d\d))$/;
const EPOCH_MS = /^[+-]?\d+$/;

/** Epoch milliseconds of `text`, or undefined when it is not a time, names no real date (02-30) or is out of range. */
export function parseTime(text: string): number | undefined {
  const ms = EPOCH_MS.test(text) ? Number(text) : dateTime(text);
  return ms !== undefined && Math.abs(ms) <= MAX_TIME_MS ? ms : undefined;
}

function dateTime(text: string): number | undefined {
  const m = DATE_TIME.exec(text);
  if (!m) return undefined;
  const n = (i: number) => Number(m[i] ?? 0);
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = [1, 2, 3, 4, 5, 6, 9, 10].map(n);
  // ISO-8601 has no year -0.
  if (m[1] === '-000000' || hour > 23 || minute > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) return undefined;
  const date = new Date(0);
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0–99 as 1900–1999.
  date.setUTCFullYear(year, month - 1, day);
  // A day the month does not have rolls over into the next month.
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return undefined;
  // Digits past milliseconds are cut, as Date.parse cuts them.
  const ms = Number((m[7] ?? '0').padEnd(3, '0').slice(0, 3));
  const offset = (m[8] === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000;
  return date.getTime() + ((hour * 60 + minute) * 60 + second) * 1000 + ms - offset;
}
