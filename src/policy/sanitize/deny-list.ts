// Custom deny lists: whole words or phrases (case-insensitive) and regular expressions, from the policy's config.
import { compileTextPattern } from '../../lib/linear-regex.js';
import type { Action } from './finding.js';
import { INVISIBLE_CLASS } from './invisible.js';
import { RegexDetector, type RegexRule } from './regex-detector.js';

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A listed word matches with invisible characters between its letters too ("pass\u200bword"), and is redacted whole. */
const dodgeProof = (word: string) => Array.from(word, escape).join(`${INVISIBLE_CLASS}*`);

export function denyListDetector(action: Action, words: readonly string[], patterns: readonly string[]): RegexDetector {
  const rules: RegexRule[] = [];
  if (words.length > 0) rules.push({ type: 'word', pattern: new RegExp(`(?<![\\p{L}\\p{N}_])(?:${words.map(dodgeProof).join('|')})(?![\\p{L}\\p{N}_])`, 'giu') });
  // Validated when the configuration loaded (apim-kinds.ts), so compiling cannot fail here.
  for (const p of patterns) rules.push({ type: 'pattern', pattern: compileTextPattern(p, 'giu') });
  return new RegexDetector('denylist', action, rules);
}
