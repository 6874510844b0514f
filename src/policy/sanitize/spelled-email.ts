// E-mail addresses spelled out to dodge scrapers ("sam dot wilson at gmail dot com"), found in one pass over the text.
// As one regex, `\b[\w.+-]{1,64}(?:\s+dot\s+…){0,8}\s+at\s+…`, V8 started a match at every word boundary and read up
// to 64 characters ahead before failing: an 8 MB prompt of `a.a.a…` blocked the event loop for 18.7 s.
import type { TextPattern } from '../../lib/linear-regex.js';

const DOT = String.raw`(?:dot|\[dot\]|\(dot\))`;
const AT = String.raw`(?:at|\[at\]|\(at\))`;
/** The local part is at most 64 characters (RFC 5321), and runs up to the white space before "dot" or "at". */
const MAX_LOCAL = 64;
/** What follows the local part: at most 8 "dot"s a side, labels of at most 63 characters. */
const REST = String.raw`(?:\s+${DOT}\s+[\w-]{1,63}){0,8}\s+${AT}\s+[\w-]{1,63}(?:\s+${DOT}\s+[a-z]{2,63}){1,8}\b`;

/** `\w` without the u flag: ASCII letters, digits and `_`. */
const isWordChar = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
/** `[\w.+-]`, what a local part is made of. */
const isLocalChar = (c: number) => isWordChar(c) || c === 46 || c === 43 || c === 45;

/**
 * Finds what `/\b[\w.+-]{1,64}REST/gi` finds, match for match, in one pass. A local part ends where a run of
 * `[\w.+-]` is followed by white space and "dot" or "at": only there is REST tried (sticky; it reads at most 17 words
 * ahead), and the match starts at the run's leftmost word boundary within 64 characters of that end, which is where
 * the regex's leftmost match would start: every start in one run has the same continuation.
 * @example new SpelledOutEmail().exec('mail sam dot wilson at gmail dot com')?.[0] // 'sam dot wilson at gmail dot com'
 */
export class SpelledOutEmail implements TextPattern {
  /** The regex this matches like, for reading: the pattern is never run as written. */
  readonly source = String.raw`\b[\w.+-]{1,${MAX_LOCAL}}` + REST;
  readonly global = true;
  readonly hasIndices = false;
  lastIndex = 0;
  /** The last character of such a run: one test per character, and each run of white space read once. */
  readonly #localEnd = new RegExp(String.raw`[\w.+-](?=\s+(?:${DOT}|${AT})\s)`, 'gi');
  readonly #rest = new RegExp(REST, 'iy');

  exec(text: string): RegExpExecArray | null {
    const from = this.lastIndex;
    const localEnd = this.#localEnd;
    localEnd.lastIndex = from;
    for (let m = localEnd.exec(text); m !== null; m = localEnd.exec(text)) {
      const end = m.index + 1;
      this.#rest.lastIndex = end;
      if (!this.#rest.test(text)) continue;
      const start = localStart(text, Math.max(from, end - MAX_LOCAL), end);
      if (start < 0) continue;
      this.lastIndex = this.#rest.lastIndex;
      return Object.assign([text.slice(start, this.lastIndex)], { index: start, input: text }) as unknown as RegExpExecArray;
    }
    this.lastIndex = 0;
    return null;
  }

  test(text: string): boolean {
    return this.exec(text) !== null;
  }
}

/** Where a local part ending at `end` starts: the first `\b` of its run at or after `floor`, or -1. */
function localStart(text: string, floor: number, end: number): number {
  let i = end - 1;
  while (i > floor && isLocalChar(text.charCodeAt(i - 1))) i--;
  let prev = i > 0 && isWordChar(text.charCodeAt(i - 1));
  for (; i < end; i++) {
    const cur = isWordChar(text.charCodeAt(i));
    if (cur !== prev) return i;
    prev = cur;
  }
  return -1;
}
