// Schemas of the API-management kinds: the regular expressions of a deny list are refused when they may take
// exponential time, naming the field, while ordinary ones pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, manifestOf } from './manifest.js';

function problemsOf(kind: string, spec: unknown): string[] {
  try {
    manifestOf(kind, 'guard', spec);
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
}

const ORDINARY = [String.raw`\b\d{3}-\d{2}-\d{4}\b`, String.raw`^[A-Z]{2}\d+$`, String.raw`\bINC-\d{4}\b`, String.raw`\bproject\s+falcon\b`];

for (const kind of ['SanitizeUserPrompt', 'SanitizeModelResponse']) {
  test(`${kind}: only the denyList pattern with nested quantifiers is refused, naming the field and why`, () => {
    // '(a' is not a regular expression at all: it gets that one problem, not a second about its running time.
    const problems = problemsOf(kind, { filters: { denyList: { patterns: [...ORDINARY, '(x+x+)+y', '(a'] } } });
    const at = `code document 0 (${kind}/guard): spec.filters.denyList.patterns`;
    assert.deepEqual(problems, [
      `${at}[4]: the pattern may take exponential time (nested quantifiers); rewrite it without a quantified group that itself contains a quantifier, such as (a+)+ or (\\d+)?; lookbehind is refused too, as the check (safe-regex2) cannot read it`,
      `${at}[5]: must be a valid regular expression`,
    ]);
  });
}
