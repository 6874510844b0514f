// Configured patterns: native RegExp unless V8 may take exponential time on them; then RE2 behind RegExp's exec/test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileTextPattern } from './linear-regex.js';

const matches = (source: string, flags: string, text: string) => {
  const re = compileTextPattern(source, flags);
  const found: [string, number][] = [];
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) found.push([m[0], m.index]);
  return found;
};

test('a pattern the check finds nothing in stays a native RegExp', () => {
  assert.ok(compileTextPattern(String.raw`\bINC-\d{4}\b`, 'giu') instanceof RegExp);
});

test('nested quantifiers run on RE2, with the matches, indexes and lastIndex RegExp would give', () => {
  const ip = String.raw`(?:\d{1,3}\.){3}\d{1,3}`;
  assert.ok(!(compileTextPattern(ip, 'giu') instanceof RegExp));
  // UTF-16 indexes (the emoji is two code units), every match in turn, as with the native engine.
  const text = '😀 from 10.0.0.12 to 192.168.1.1.';
  assert.deepEqual(matches(ip, 'giu', text), [['10.0.0.12', 8], ['192.168.1.1', 21]]);
  assert.deepEqual(matches(ip, 'giu', text), [...text.matchAll(new RegExp(ip, 'gu'))].map((m) => [m[0], m.index]));
  // i: case-insensitive, as the deny list compiles its patterns.
  assert.deepEqual(matches('(ab+)+c', 'giu', 'xABBC abc'), [['ABBC', 1], ['abc', 6]]);
  const re = compileTextPattern('(ab+)+c', 'giu');
  assert.equal(re.test('no match here'), false);
  assert.equal(re.lastIndex, 0);
});

test('in linear time where V8 backtracks exponentially', () => {
  // 60 x's without a y: about 2^60 steps for V8 (this test would not end), one pass for RE2.
  assert.deepEqual(matches('(x+x+)+y', 'giu', 'x'.repeat(60)), []);
  assert.deepEqual(matches('(x+x+)+y', 'giu', `${'x'.repeat(60)}y`), [[`${'x'.repeat(60)}y`, 0]]);
});

test('a nested pattern RE2 cannot run either (lookaround, backreferences) is refused with both reasons', () => {
  assert.throws(() => compileTextPattern('(x+x+)+(?=y)', 'giu'), /^Error: the pattern may take exponential time in V8 .*, and the linear engine \(RE2\) that would run it instead cannot: /);
});
