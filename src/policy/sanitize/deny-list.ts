// Custom deny lists: whole words or phrases (case-insensitive) and regular expressions, from the policy's config.
import { compileTextPattern } from '../../lib/linear-regex.js';
import type { Action } from './finding.js';
import { INVISIBLE_CLASS } from './invisible.js';
import { lookalikeClass } from './lookalikes.js';
import { RegexDetector, type RegexRule } from './regex-detector.js';

/**
 * A listed word matches with invisible characters between its letters ("pass\u200bword"), its letters written in any
 * form injection matching folds to them (look-alikes, fullwidth, mathematical, circled: "раssword", "𝐩𝐚𝐬𝐬𝐰𝐨𝐫𝐝"), and
 * any run of white space where the phrase has one ("project \n falcon"); it is redacted whole.
 */
const dodgeProof = (phrase: string) =>
  phrase
    .trim()
    .split(/\s+/)
    .map((word) => Array.from(word, lookalikeClass).join(`${INVISIBLE_CLASS}*`))
    .join(`[\\s${INVISIBLE_CLASS}]+`);

export function denyListDetector(action: Action, words: readonly string[], patterns: readonly string[]): RegexDetector {
  const rules: RegexRule[] = [];
  if (words.length > 0) rules.push({ type: 'word', pattern: new RegExp(`(?<![\\p{L}\\p{N}_])(?:${words.map(dodgeProof).join('|')})(?![\\p{L}\\p{N}_])`, 'giu') });
  // Validated when the configuration loaded (apim-kinds.ts), so compiling cannot fail here.
  for (const p of patterns) rules.push({ type: 'pattern', pattern: compileTextPattern(p, 'giu') });
  return new RegexDetector('denylist', action, rules);
}
