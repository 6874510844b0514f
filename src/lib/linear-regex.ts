// Configured regular expressions that V8's backtracking engine could take exponential time on (nested quantifiers,
// regex-safety.ts) run on RE2 instead (re2js: linear in the text, whatever the pattern), behind the part of the
// RegExp interface tollgate's callers use. RE2 is 25-130x slower than V8 on ordinary patterns (an SSN pattern over
// 100 KB: 50 against 2 ms), so the patterns the check finds nothing in stay native.
import type * as Re2js from 're2js';
import { lazyRequire } from './lazy-require.js';
import { unsafePatternReason } from './regex-safety.js';

/** Loaded with the first such pattern: most configurations have none. */
export const loadRe2 = lazyRequire<typeof Re2js>('re2js');

/** What callers of a configured pattern use: `test`, and `exec` from `lastIndex` with the g flag. */
export interface TextPattern {
  readonly source: string;
  readonly global: boolean;
  readonly hasIndices: boolean;
  lastIndex: number;
  exec(text: string): RegExpExecArray | null;
  test(text: string): boolean;
}

/** An RE2 pattern with RegExp's exec/test/lastIndex behaviour (global; whole matches only, no capture indices). */
class Re2Pattern implements TextPattern {
  readonly source: string;
  readonly global: boolean;
  readonly hasIndices = false;
  lastIndex = 0;
  readonly #re: Re2js.RE2JS;
  /** The matcher of the text last searched: exec() walks one text match by match. */
  #text: string | undefined;
  #matcher: Re2js.Matcher | undefined;

  constructor(source: string, re: Re2js.RE2JS, global: boolean) {
    this.source = source;
    this.#re = re;
    this.global = global;
  }

  exec(text: string): RegExpExecArray | null {
    if (text !== this.#text || !this.#matcher) {
      this.#text = text;
      this.#matcher = this.#re.matcher(text);
    }
    const from = this.global ? this.lastIndex : 0;
    if (from > text.length || !this.#matcher.find(from)) {
      this.lastIndex = 0;
      return null;
    }
    const start = this.#matcher.start();
    const end = this.#matcher.end();
    if (this.global) this.lastIndex = end;
    return Object.assign([text.slice(start, end)], { index: start, input: text }) as unknown as RegExpExecArray;
  }

  test(text: string): boolean {
    return this.exec(text) !== null;
  }
}

/**
 * `source` compiled for client text with `flags` (g, i, u and d are understood): a native RegExp, or RE2 when the
 * pattern may take exponential time. @throws Error when neither can run it (a nested pattern with lookaround or a
 * backreference, which RE2 lacks), naming both reasons.
 * @example compileTextPattern('(?:\\d{1,3}\\.){3}\\d{1,3}', 'giu') // RE2: a quantified group with a quantifier inside
 */
export function compileTextPattern(source: string, flags: string): TextPattern {
  const nested = unsafePatternReason(source);
  if (nested === undefined) return new RegExp(source, flags);
  const { RE2JS } = loadRe2();
  try {
    return new Re2Pattern(source, RE2JS.compile(source, flags.includes('i') ? RE2JS.CASE_INSENSITIVE : 0), flags.includes('g'));
  } catch (err) {
    throw new Error(`${nested}, and the linear engine (RE2) that would run it instead cannot: ${(err as Error).message}`);
  }
}
