// The spelled-out e-mail rule: it finds what its regex found, and its costly part runs only near a " dot " or " at ".
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Finding } from './finding.js';
import { piiDetector, RULES } from './pii.js';

/** The rule as one regex, before spelled-email.ts: an 8 MB `a.a.a…` prompt blocked the event loop for 18.7 s. */
const AS_ONE_REGEX = /\b[\w.+-]{1,64}(?:\s+(?:dot|\[dot\]|\(dot\))\s+[\w-]{1,63}){0,8}\s+(?:at|\[at\]|\(at\))\s+[\w-]{1,63}(?:\s+(?:dot|\[dot\]|\(dot\))\s+[a-z]{2,63}){1,8}\b/gi;
/** What any regex that tries the whole address from a local part must contain: the " at " and the domain's first label. */
const CONTINUATION = String.raw`\s+(?:at|\[at\]|\(at\))\s+[\w-]{1,63}`;

const spelled = RULES.email.find((r) => r.pattern.source.includes(CONTINUATION))!;
const matches = (pattern: typeof spelled.pattern, text: string) => {
  const out: string[] = [];
  pattern.lastIndex = 0;
  for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) out.push(`${m.index}:${m[0]}`);
  return out;
};

test('finds what the one regex found, match for match', () => {
  const words = ['sam', 'x.y', '.q', 'a+b', 'ab-cd', 'c1', 'at', 'AT', 'dot', 'com', 'a'.repeat(63), 'b.'.repeat(33), '[at]', '(dot)', '@', '!', 'é'];
  const gaps = [' ', '  ', '\n', '\t', '', '.', ' dot ', ' at ', ' [dot] ', ' (at) '];
  const text = fc.array(fc.tuple(fc.constantFrom(...words), fc.constantFrom(...gaps)), { maxLength: 30 }).map((ts) => ts.flat().join(''));
  fc.assert(
    fc.property(text, (t) => assert.deepEqual(matches(spelled.pattern, t), matches(AS_ONE_REGEX, t))),
    { numRuns: 20_000 },
  );
  assert.deepEqual(matches(spelled.pattern, 'mail sam dot wilson at gmail dot com, or j.doe (at) mail [dot] example [dot] org'), [
    '5:sam dot wilson at gmail dot com',
    '41:j.doe (at) mail [dot] example [dot] org',
  ]);
});

describe('a multi-megabyte prompt is scanned in one pass', () => {
  /** Regex executions that try the whole address (counted through RegExp.prototype.exec, which test() calls too). */
  function continuationTries(text: string): { tries: number; found: Finding[] } {
    const exec = RegExp.prototype.exec;
    let tries = 0;
    RegExp.prototype.exec = function (this: RegExp, s: string) {
      if (this.source.includes(CONTINUATION)) tries++;
      return exec.call(this, s);
    };
    const found: Finding[] = [];
    try {
      piiDetector('redact', ['email']).scan(text, found);
    } finally {
      RegExp.prototype.exec = exec;
    }
    return { tries, found };
  }
  const anchors = (text: string) => text.match(/\s(?:dot|at|\[dot\]|\[at\]|\(dot\)|\(at\))\s/gi)?.length ?? 0;
  const MB = 4 * 1024 * 1024;
  const fill = (unit: string) => unit.repeat(Math.ceil(MB / unit.length));

  // The shapes of the report (hunt-memory): a word boundary at every other character, and addresses written out.
  // Where no " dot " or " at " follows a word, no local part can end and the address is never tried at all.
  for (const unit of ['a.', '1.1.1.', 'x@y.co ']) {
    test(`${JSON.stringify(unit)} × ${MB}`, () => {
      const text = fill(unit);
      const { tries, found } = continuationTries(text);
      assert.equal(tries, 0);
      assert.equal(found.length, unit === 'x@y.co ' ? text.length / unit.length : 0);
    });
  }
  test('spelled-out addresses and chains of "dot": tried at most once per " dot " or " at "', () => {
    for (const unit of ['sam dot wilson at gmail dot com ', 'x dot ', `${'a'.repeat(60)} dot x at `]) {
      const text = fill(unit);
      const { tries, found } = continuationTries(text);
      assert.ok(tries <= anchors(text), `${tries} tries for ${anchors(text)} anchors`);
      assert.equal(found.length, unit.startsWith('sam') ? text.length / unit.length : 0);
    }
  });
});
