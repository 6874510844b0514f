// The automaton means what the regular expressions it replaced meant, checked over every short text of a small
// alphabet; and it reads each character once (counted, not timed) on the shapes that made those expressions cubic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countReads } from './count-reads.js';
import { compileWildcardPattern, DEEP, piecesOf, SEGMENT, WILD, type Pieces, type Wildcard } from './wildcard-pattern.js';

const LABELS: Wildcard = { inside: (c) => (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45, separator: 46 };

/** The regular expression a pattern's pieces stand for. */
function meaning(pieces: Pieces, wild: Wildcard): RegExp {
  const wildSource = wild === LABELS ? '[a-z0-9-]+(?:\\.[a-z0-9-]+)*' : '[^/]+';
  const source = pieces.map((p) => (p === WILD ? wildSource : p === DEEP ? '(?:/.*)?' : String.fromCharCode(p).replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&'))).join('');
  return new RegExp(`^${source}$`);
}

function texts(alphabet: string, maxLength: number): string[] {
  const out = [''];
  for (let i = 0; out[i] !== undefined && out[i].length < maxLength; i++) for (const c of alphabet) out.push(out[i] + c);
  return out;
}

test('wildcard patterns match exactly what their regular expressions matched, over every short text', () => {
  const cases: [string, Wildcard][] = [
    ['/a/*', SEGMENT],
    ['/*-*', SEGMENT],
    ['/*/*', SEGMENT],
    ['**', SEGMENT],
    ['a*a', SEGMENT],
    ['h://*.b', LABELS],
    ['h://*-*.b', LABELS],
    ['*.*', LABELS],
    ['*', LABELS],
  ];
  for (const [pattern, wild] of cases) {
    // `**` stands for DEEP here (a pattern of its own, then prefixed with /a): `(?:/.*)?`.
    const pieces = pattern === '**' ? [47, 97, DEEP] : piecesOf(pattern, '*');
    const match = compileWildcardPattern(pieces, wild);
    const re = meaning(pieces, wild);
    for (const text of texts(wild === LABELS ? 'a.-b:/h' : '/a-b', 6)) assert.equal(match(text), re.test(text), `${pattern} against ${JSON.stringify(text)}`);
  }
  // DEEP in the middle and twice: `/a(?:/.*)?/*` and `(?:/.*)?(?:/.*)?`.
  for (const pieces of [[47, 97, DEEP, 47, WILD], [DEEP, DEEP], [DEEP, 47, WILD, 45, WILD]]) {
    const match = compileWildcardPattern(pieces, SEGMENT);
    const re = meaning(pieces, SEGMENT);
    for (const text of texts('/a-', 6)) assert.equal(match(text), re.test(text), `${re} against ${JSON.stringify(text)}`);
  }
});

test('each character is read once, with no regular expression, on text that made the old expressions cubic', () => {
  const match = compileWildcardPattern([47, WILD, 45, WILD, 45, WILD, DEEP, 47, 120], SEGMENT);
  const text = `/${'-'.repeat(2000)}/y`;
  const { result: matched, reads, regexRuns } = countReads(() => match(text));
  assert.equal(matched, false);
  assert.equal(regexRuns, 0);
  assert.ok(reads <= text.length, `${reads} reads for ${text.length} characters`);
});
