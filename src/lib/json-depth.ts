// How deeply a JSON text nests arrays and objects, without recursing: JSON.parse copes with any depth, but code that
// walks the value afterwards (validation, JSON.stringify) overflows the stack a few thousand levels down.

/**
 * The deepest nesting of arrays and objects tollgate takes in a JSON document (a request body, an admin apply): later
 * stages recurse over the value (validation, JSON.stringify of a rewritten body, policies that walk it), and a
 * document nested a few thousand levels deep would overflow the stack there, a 500 for what is a bad request. Real
 * documents (tool schemas, manifests) stay far below this.
 */
export const MAX_JSON_DEPTH = 512;

/** Whether `raw`, valid JSON, nests arrays and objects deeper than `max`; one pass over the bytes, strings skipped. */
export function nestsDeeperThan(raw: Buffer, max: number): boolean {
  // Every level opens with a bracket of its own: a body with no more brackets than `max` cannot be that deep. Counting
  // them is a native byte search (2 µs for a 100 KB chat body, against 105 µs for the scan below and 47 µs for
  // JSON.parse itself), and it settles nearly every request: only bodies with hundreds of brackets are scanned.
  if (raw.length <= max || bracketsUpTo(raw, max + 1) <= max) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (inString) {
      if (c === 0x5c) i++; // a backslash escapes the next byte (a quote or another backslash)
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** How many `[` and `{` bytes `raw` holds, counting no further than `limit` (strings included: an upper bound). */
function bracketsUpTo(raw: Buffer, limit: number): number {
  let n = 0;
  for (const bracket of [0x5b, 0x7b]) {
    for (let i = raw.indexOf(bracket); i !== -1; i = raw.indexOf(bracket, i + 1)) if (++n >= limit) return n;
  }
  return n;
}
