// Patterns with wildcards (CORS origins `https://*.example.com`, OpenAPI path templates `/files/{name}.{ext}`,
// Apigee resource paths `/v1/*/items/**`) matched by an automaton that follows every way to match at once.
//
// They used to be regular expressions with one `[^/]+` (or a DNS-label class) per wildcard, and a backtracking engine
// tries every way to share a stretch of text between two or more of them: against 8,000 characters of `-`,
// `/files/{a}-{b}-{c}` took 66 s and `https://*-*-*.example.com` 22 s (cubic), per request, on text the client
// chooses. Here each character of the text is read once; the time is linear in it (times the pattern's length).

/** One or more characters of the wildcard's class (with separators between them, when the wildcard has one). */
export const WILD = -1;
/** `(?:/.*)?`: nothing, or a `/` and then anything (Apigee's `/**`). */
export const DEEP = -2;

/** A pattern's pieces, in order: character codes (each stands for itself), WILD and DEEP. */
export type Pieces = readonly number[];

export interface Wildcard {
  /** The characters a WILD piece is made of. */
  inside(c: number): boolean;
  /** A character that may stand between two runs of them (`.` between DNS labels), never first or last. */
  separator?: number;
}

const SLASH = 47;

/** A path wildcard: one or more characters other than `/` (the `[^/]+` it replaces). */
export const SEGMENT: Wildcard = { inside: (c) => c !== SLASH };

/**
 * compileWildcardPattern(piecesOf('/a/*', '*'), { inside: (c) => c !== 47 })('/a/b') → true
 */
export function compileWildcardPattern(pieces: Pieces, wild: Wildcard): (text: string) => boolean {
  const m = pieces.length;
  const { inside, separator } = wild;
  return (text) => {
    // at[i]: piece i comes next. inWild[i]: inside WILD piece i, just after one of its characters (it may end
    // here). inDeep[i]: inside DEEP piece i, after its slash (it may end anywhere).
    let at = new Uint8Array(m + 1);
    let inWild = new Uint8Array(m);
    let inDeep = new Uint8Array(m);
    let nextAt = new Uint8Array(m + 1);
    let nextInWild = new Uint8Array(m);
    let nextInDeep = new Uint8Array(m);
    at[0] = 1;
    close(pieces, at, inWild, inDeep);
    for (let k = 0; k < text.length; k++) {
      const c = text.charCodeAt(k);
      nextAt.fill(0);
      nextInWild.fill(0);
      nextInDeep.fill(0);
      let alive = false;
      for (let i = 0; i < m; i++) {
        const piece = pieces[i];
        if (at[i]) {
          if (piece === WILD ? inside(c) : piece === DEEP ? c === SLASH : piece === c) {
            if (piece === WILD) nextInWild[i] = 1;
            else if (piece === DEEP) nextInDeep[i] = 1;
            else nextAt[i + 1] = 1;
            alive = true;
          }
        }
        if (inWild[i] && inside(c)) {
          nextInWild[i] = 1;
          alive = true;
        } else if (inWild[i] && c === separator) {
          nextAt[i] = 1;
          alive = true;
        }
        if (inDeep[i]) {
          nextInDeep[i] = 1;
          alive = true;
        }
      }
      if (!alive) return false;
      close(pieces, nextAt, nextInWild, nextInDeep);
      [at, nextAt] = [nextAt, at];
      [inWild, nextInWild] = [nextInWild, inWild];
      [inDeep, nextInDeep] = [nextInDeep, inDeep];
    }
    return at[m] === 1;
  };
}

/** The moves that read nothing: a wildcard may end where it is, a DEEP piece may match nothing. They only go forward. */
function close(pieces: Pieces, at: Uint8Array, inWild: Uint8Array, inDeep: Uint8Array): void {
  for (let i = 0; i < pieces.length; i++) {
    if (inWild[i] || inDeep[i] || (at[i] && pieces[i] === DEEP)) at[i + 1] = 1;
  }
}

/** The pieces of `pattern` where `wildcard` (a character such as `*`) stands for WILD and the rest for itself. */
export function piecesOf(pattern: string, wildcard: string): number[] {
  const pieces: number[] = [];
  for (let i = 0; i < pattern.length; i++) pieces.push(pattern[i] === wildcard ? WILD : pattern.charCodeAt(i));
  return pieces;
}
