// Which configured regular expressions V8's backtracking engine may take exponential time on (nested quantifiers;
// more quantifiers than the checker counts), so that they run on RE2 (linear-regex.ts), and that ordinary operator
// patterns are not among them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unsafePatternReason } from './regex-safety.js';

const accepted = [
  String.raw`\bINC-\d{4}\b`,
  '^[a-z]+$',
  String.raw`\b\d{3}-\d{2}-\d{4}\b`,
  String.raw`^[A-Z]{2}\d+$`,
  String.raw`\bproject\s+falcon\b`,
  '(?:confidential|internal only)',
  String.raw`^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$`,
  '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$',
  String.raw`^\+?[1-9]\d{1,14}$`,
  '^(gpt|llama|mistral)-',
  String.raw`^\p{Lu}\p{Ll}+$`,
  String.raw`(?<year>\d{4})-(?<month>\d{2})`,
  // An optional part written as an alternative with an empty branch, as the READMEs suggest.
  String.raw`^\d{2}:\d{2}(?:\.\d+|)Z$`,
];
for (const pattern of accepted) test(`${pattern} runs on V8`, () => assert.equal(unsafePatternReason(pattern), undefined));

const NESTED = /^the pattern may take exponential time in V8 \(a quantified group that itself contains a quantifier/;
const refused: [pattern: string, reason: RegExp][] = [
  ['(x+x+)+y', NESTED],
  ['^(a+)+$', NESTED],
  [String.raw`^(\w+\s?)+$`, NESTED],
  ['(.*a){12}', NESTED],
  [String.raw`^\d{2}:\d{2}(?:\.\d+)?Z$`, NESTED],
  [`^${'a?'.repeat(26)}$`, /has more than 25 quantifiers/],
];
for (const [pattern, reason] of refused) test(`${pattern} is not for V8`, () => assert.match(unsafePatternReason(pattern) ?? 'accepted', reason));
