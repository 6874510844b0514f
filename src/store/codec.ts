// Column codecs that hide the SQLite/PostgreSQL differences in how JSON, timestamps and bigints come back.

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export function encodeJson(value: unknown): string {
  return JSON.stringify(value);
}

/** Our JSON columns only ever hold objects or arrays, so a string here is always SQLite's text form. */
export function decodeJson<T>(value: unknown): T {
  return (typeof value === 'string' ? JSON.parse(value) : value) as T;
}

/** Any date string JavaScript parses, stored as canonical ISO-8601 so both backends return the same text. */
export function encodeTimestamp(value: string): string {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new RangeError(`invalid timestamp "${value}"`);
  return date.toISOString();
}

export function decodeTimestamp(value: Date | string): string {
  return value instanceof Date ? value.toISOString() : value;
}

export function decodeNullableTimestamp(value: Date | string | null): string | null {
  return value === null ? null : decodeTimestamp(value);
}

export function decodeNullableNumber(value: string | number | null): number | null {
  return value === null ? null : Number(value);
}
