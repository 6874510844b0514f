// The common detector shape: one precompiled global regex per type, an optional validator over the match (Luhn,
// area rules, placeholders), and optionally only a capture group redacted (the value, not `password=`).
import type { TextPattern } from '../../lib/linear-regex.js';
import type { Action, Category, Detector, Finding } from './finding.js';

export interface RegexRule {
  type: string;
  /** A RegExp, or a configured pattern on the linear engine (linear-regex.ts). */
  pattern: TextPattern;
  /** Keeps a match only when this says so (checksums, exclusions). Gets the matched text (or the group's). */
  valid?: (match: string, text: string, start: number) => boolean;
  /** Report this capture group's span instead of the whole match (the pattern needs the d flag). */
  group?: number;
}

export class RegexDetector implements Detector {
  readonly #category: Category;
  readonly #action: Action;
  readonly #rules: readonly RegexRule[];

  constructor(category: Category, action: Action, rules: readonly RegexRule[]) {
    for (const r of rules) {
      if (!r.pattern.global) throw new Error(`rule ${r.type}: the pattern needs the g flag`);
      if (r.group !== undefined && !r.pattern.hasIndices) throw new Error(`rule ${r.type}: a group rule needs the d flag`);
    }
    this.#category = category;
    this.#action = action;
    this.#rules = rules;
  }

  scan(text: string, out: Finding[]): void {
    for (const rule of this.#rules) {
      const re = rule.pattern;
      re.lastIndex = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        if (m[0] === '') {
          re.lastIndex++;
          continue;
        }
        const value = rule.group === undefined ? m[0] : m[rule.group];
        if (value === undefined) continue;
        const start = rule.group === undefined ? m.index : m.indices![rule.group]![0];
        if (rule.valid && !rule.valid(value, text, start)) continue;
        out.push({ category: this.#category, type: rule.type, start, end: start + value.length, action: this.#action });
      }
    }
  }
}
