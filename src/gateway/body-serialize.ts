// A request body tollgate changed (the model rewritten, a token cap, include_usage), serialized again without
// changing the numbers it did not touch. JSON.parse reads an integer beyond 2^53 (a 64-bit `seed`, an id a model
// server takes) as the nearest double, and JSON.stringify would send that double: 12345678901234567890 would reach
// the model server as 12345678901234567000, which Python's json reads as the integer it is.
import { randomBytes } from 'node:crypto';
import { jsonText } from '../lib/json-text.js';

/** 16 digits in a row: below that every integer is exact as a double, so nearly every body stops at this test. */
const LONG_DIGITS = /\d{16}/;
/**
 * A JSON text's strings, each taken whole (so nothing inside one is read as a number), or an integer of 16 digits
 * or more outside them: a whole token, not the digits of a fraction or an exponent, which are a double for the model
 * server too and left to JSON.
 */
const STRING_OR_LONG_INTEGER = /"[^"\\]*(?:\\.[^"\\]*)*"|(?<![\w.+-])(-?\d{16,})(?![\d.eE])/g;
/** Marks an integer's exact digits while they travel as a string; the random part keeps a client's text from posing as one. */
const MARK = `\u0000tollgate-integer-${randomBytes(8).toString('hex')}:`;
const MARKED = new RegExp(`"\\\\u0000${MARK.slice(1)}(-?\\d+)"`, 'g');

/**
 * `body` as JSON, with the client's long integers as the client wrote them wherever `body` still holds their value.
 * `stringify` may be another JSON serializer (a cache's canonical JSON, keying on the digits the client wrote).
 */
export function serializeBody(body: object, raw: Buffer | undefined, stringify: (value: unknown) => string = JSON.stringify): Buffer {
  const plain = () => Buffer.from(stringify(body));
  const client = raw && jsonText(raw);
  if (client === undefined || !LONG_DIGITS.test(client)) return plain();
  let marked = false;
  const source = client.replace(STRING_OR_LONG_INTEGER, (token, integer: string | undefined) => {
    if (integer === undefined) return token;
    marked = true;
    return JSON.stringify(MARK + integer);
  });
  if (!marked) return plain();
  let exact: unknown;
  try {
    exact = JSON.parse(source);
  } catch {
    // Not the JSON the body was read from (a mutation replaced the bytes): nothing to restore from.
    return plain();
  }
  return Buffer.from(stringify(withExactIntegers(body, exact)).replace(MARKED, '$1'));
}

/** A copy of `value` where a number equal to the marked integer at the same place in `exact` becomes that mark. */
function withExactIntegers(value: unknown, exact: unknown): unknown {
  if (typeof value === 'number') {
    return typeof exact === 'string' && exact.startsWith(MARK) && Number(exact.slice(MARK.length)) === value ? exact : value;
  }
  if (value === null || typeof value !== 'object' || exact === null || typeof exact !== 'object') return value;
  if (Array.isArray(value)) return Array.isArray(exact) ? value.map((v, i) => withExactIntegers(v, exact[i])) : value;
  const fields = exact as Record<string, unknown>;
  // fromEntries defines each key as data, so a `__proto__` field stays a field as JSON.parse made it.
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withExactIntegers(v, Object.hasOwn(fields, k) ? fields[k] : undefined)]));
}
