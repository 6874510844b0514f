// Column codecs that hide the SQLite/PostgreSQL differences in how JSON, timestamps and bigints come back.

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/**
 * NUL and unpaired UTF-16 surrogates: PostgreSQL refuses them in text and jsonb (an error, not a 4xx), and SQLite
 * stores a lone surrogate as replacement characters, so callers refuse such text before it reaches a query.
 */
const UNSTORABLE = /\0|\p{Cs}/u;

export function isStorableText(text: string): boolean {
  return !UNSTORABLE.test(text);
}

export const UNSTORABLE_TEXT_MESSAGE = 'must not contain NUL characters or unpaired UTF-16 surrogates';

/** Paths (`attributes[0].value`, keys included) of every string in a JSON value that the database cannot store. */
export function unstorableTextPaths(value: unknown, path: (string | number)[] = []): (string | number)[][] {
  if (typeof value === 'string') return isStorableText(value) ? [] : [path];
  if (Array.isArray(value)) return value.flatMap((v, i) => unstorableTextPaths(v, [...path, i]));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => (isStorableText(k) ? unstorableTextPaths(v, [...path, k]) : [[...path, k]]));
}

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
