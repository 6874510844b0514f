// Header values a policy renders from request data (`{request.queryparam.q}`) can hold characters HTTP cannot carry
// (a line break): node:http refuses such a header when the answer's head is written, which would lose the answer.

/** What RFC 9110 field values (and node:http) allow: tab, visible ASCII, space, obs-text. */
const UNSENDABLE = /[^\t\x20-\x7e\x80-\xff]/;

const unsendable = (v: unknown): boolean => (typeof v === 'string' ? UNSENDABLE.test(v) : Array.isArray(v) && v.some(unsendable));

/** Removes the headers whose value cannot be sent; returns their names (the answer goes on without them). */
export function dropUnsendableHeaders(headers: Record<string, unknown>): string[] {
  const dropped: string[] = [];
  for (const name in headers) {
    if (unsendable(headers[name])) {
      delete headers[name];
      dropped.push(name);
    }
  }
  return dropped;
}
