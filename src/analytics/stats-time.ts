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

/** The widest offsets in use (UTC−12 to UTC+14), with room: ±14:00. */
const MAX_OFFSET_MINUTES = 14 * 60;
const OFFSET = /^([+-])(\d\d):?(\d\d)$/;

/**
 * Minutes east of UTC from `Z`, `+05:30`, `-0800` or a count of minutes (`330`, `-480`, as Apigee's `tzo`), or
 * undefined when it is none of them or beyond ±14:00.
 */
export function parseOffset(text: string): number | undefined {
  if (text === 'Z') return 0;
  let minutes: number | undefined;
  // No sign but '-' and no leading zero: `+09` and `-08` read as minutes would be a mistake for hours.
  if (/^-?(?:0|[1-9]\d{0,2})$/.test(text)) minutes = Number(text);
  else {
    const m = OFFSET.exec(text);
    if (m && Number(m[3]) < 60) minutes = (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
  }
  return minutes !== undefined && Math.abs(minutes) <= MAX_OFFSET_MINUTES ? minutes + 0 : undefined;
}

/** An offset as ISO-8601 writes it: `Z`, `+05:30`, `-08:00`. */
export function offsetText(minutes: number): string {
  if (minutes === 0) return 'Z';
  const abs = Math.abs(minutes);
  return `${minutes < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/** `ms` as ISO-8601 at an offset of `minutes` east of UTC (`2025-01-31T05:30:00.000+05:30`). */
export function isoAtOffset(ms: number, minutes: number): string {
  return `${new Date(ms + minutes * 60_000).toISOString().slice(0, -1)}${offsetText(minutes)}`;
}
