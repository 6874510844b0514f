// Regular expressions from configuration run against client input on the event loop, in V8's backtracking engine:
// `(x+x+)+y` took 6.4 s on 26 characters, exponential in the length. safe-regex2 (Fastify's star-height check) tells
// which must run on the linear engine instead (linear-regex.ts). Star height misses alternatives that overlap under
// one quantifier (`(\w|\d)+$` took 92 s on 29): the READMEs tell operators to write those as one character class.
import type SafeRegex from 'safe-regex2';
import { lazyRequire } from './lazy-require.js';

/** Loaded with the first pattern checked: most configurations have none, and it costs ~25 ms to import. */
const safeRegex = lazyRequire<typeof SafeRegex>('safe-regex2');

/** safe-regex2's default limit, named in the message. */
const MAX_QUANTIFIERS = 25;

/**
 * Why V8 may take exponential time on a pattern, or undefined when the check finds no reason.
 * @example unsafePatternReason('(x+x+)+y') → 'the pattern may take exponential time in V8 (a quantified group ...)'
 * @example unsafePatternReason(String.raw`\bINC-\d{4}\b`) → undefined
 */
export function unsafePatternReason(pattern: string): string | undefined {
  const check = safeRegex();
  if (check(pattern, { limit: MAX_QUANTIFIERS })) return undefined;
  if (check(pattern, { limit: Infinity })) return `the pattern has more than ${MAX_QUANTIFIERS} quantifiers, more than the check (safe-regex2) reads`;
  // safe-regex2 answers "unsafe" as well for what its parser (ret) cannot read, of which lookbehind is the common case.
  return 'the pattern may take exponential time in V8 (a quantified group that itself contains a quantifier, or lookbehind, which the check cannot read)';
}
