// Which origins a CORS policy allows: exact origins, `*`, or patterns where `*` stands for one or more DNS labels.

/** origin → whether it is allowed; compiled once. */
export type OriginMatcher = (origin: string) => boolean;

/** A pattern's pieces: a literal character code, or WILD (one or more DNS labels, `[a-z0-9-]+(?:\.[a-z0-9-]+)*`). */
const WILD = -1;

const isLabelChar = (c: number) => (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45;

/**
 * Whether the (lower-case) origin matches the pattern's pieces, reading each character once. The patterns used to be
 * regular expressions with one `[a-z0-9-]+(?:\.[a-z0-9-]+)*` per `*`, and a backtracking engine tries every way to
 * share an origin between two or more of them: with `https://*.*.example.com`, a client's 8 KiB Origin header of
 * `a.a.a…` took 29 ms (quadratic), with `https://*-*-*.example.com` 22 s (cubic). This runs the pattern as an
 * automaton over all its states at once instead: time linear in the origin (times the pattern's length).
 */
function matchPieces(pieces: readonly number[], origin: string): boolean {
  const m = pieces.length;
  // at[i]: piece i is next (a WILD piece next needs a label character); inWild[i]: inside WILD piece i, just after a
  // label character (it may end there, or go on with a label character or a dot).
  let at = new Uint8Array(m + 1);
  let inWild = new Uint8Array(m + 1);
  let nextAt = new Uint8Array(m + 1);
  let nextInWild = new Uint8Array(m + 1);
  at[0] = 1;
  for (let k = 0; k < origin.length; k++) {
    const c = origin.charCodeAt(k);
    const label = isLabelChar(c);
    nextAt.fill(0);
    nextInWild.fill(0);
    let alive = false;
    for (let i = 0; i < m; i++) {
      if (at[i]) {
        if (pieces[i] === WILD ? label : pieces[i] === c) {
          if (pieces[i] === WILD) nextInWild[i] = 1;
          else nextAt[i + 1] = 1;
          alive = true;
        }
      }
      if (inWild[i]) {
        if (label) nextInWild[i] = 1;
        else if (c === 46 /* . */) nextAt[i] = 1;
        alive ||= label || c === 46;
      }
    }
    if (!alive) return false;
    // A wildcard may end after any label character.
    for (let i = 0; i < m; i++) if (nextInWild[i]) nextAt[i + 1] = 1;
    [at, nextAt] = [nextAt, at];
    [inWild, nextInWild] = [nextInWild, inWild];
  }
  return at[m] === 1;
}

function compilePattern(pattern: string): number[] {
  const pieces: number[] = [];
  for (let i = 0; i < pattern.length; i++) pieces.push(pattern[i] === '*' ? WILD : pattern.charCodeAt(i));
  return pieces;
}

/** compileOrigins(['https://app.example.com', 'https://*.example.com']) */
export function compileOrigins(allowed: readonly string[]): { matches: OriginMatcher; any: boolean } {
  if (allowed.includes('*')) return { matches: () => true, any: true };
  const exact = new Set(allowed.filter((o) => !o.includes('*')).map((o) => o.toLowerCase()));
  const patterns = allowed.filter((o) => o.includes('*')).map((o) => compilePattern(o.toLowerCase()));
  return {
    matches: (origin) => {
      const lower = origin.toLowerCase();
      return exact.has(lower) || patterns.some((p) => matchPieces(p, lower));
    },
    any: false,
  };
}
