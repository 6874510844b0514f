// Look-alike folding: each letter folds as it looks in its own case, no letter folds in one case only, and the deny
// list's classes hold what the fold folds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foldLookalikes, lookalikeClass } from './lookalikes.js';

const CASES: [lookalikes: string, latin: string][] = [
  // Capitals whose small letters alone were listed: "ӀGNORE ΑLL" was matched as it is, and matched nothing.
  ['ΑⱭ', 'aa'],
  ['ӀƖ', 'ii'],
  ['ВЬΒ', 'bbb'],
  ['ԀԚԜѠѴҺҼҮՍՕՈꞬͿ', 'dqwwvheyuongj'],
  // Small letters whose capitals alone were listed.
  ['вьβ', 'bbb'],
  ['εζτμ', 'eztu'],
  ['мнт', 'mht'],
  // Each case as it looks: Η and η, Ν and ν, Υ and υ, Ӏ and ӏ are different letters.
  ['ΗηΝνΥυӀӏ', 'hnnvyuil'],
  // NFKC turns lunate sigma into ς and Σ, which look like no Latin letter: folded before it.
  ['ϲϹ', 'cc'],
  // A capital that looks like no Latin letter folds as its small letter does.
  ['гГ', 'rr'],
  // Mathematical Greek, which NFKC turns into the letters listed.
  ['𝛂𝚨', 'aa'],
];

test('look-alikes fold to the Latin letter each looks like in its own case', () => {
  for (const [lookalikes, latin] of CASES) assert.equal(foldLookalikes(lookalikes).toLowerCase(), latin, lookalikes);
});

test('no letter folds in one case only', () => {
  const latin = (s: string) => /^[a-z]$/i.test(s);
  const oneCase: string[] = [];
  for (let cp = 0x80; cp <= 0x1ffff; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const c = String.fromCodePoint(cp);
    if (!latin(foldLookalikes(c))) continue;
    for (const other of [c.toLowerCase(), c.toUpperCase()]) {
      if (other !== c && [...other].length === 1 && !latin(foldLookalikes(other))) oneCase.push(`${c} folds, ${other} does not`);
    }
  }
  assert.deepEqual(oneCase, []);
});

test("the deny list's classes hold both cases and the letters NFKC would lose", () => {
  for (const [letter, lookalikes] of [['a', 'Αα'], ['i', 'Ӏ'], ['c', 'ϲϹ']] as const) {
    const re = new RegExp(`^${lookalikeClass(letter)}$`, 'iu');
    for (const c of lookalikes) assert.match(c, re, `${c} for ${letter}`);
  }
});
