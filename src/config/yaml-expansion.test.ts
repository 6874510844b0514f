import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDocument } from 'yaml';
import { expansionOf } from './yaml-expansion.js';

const cases: { name: string; yaml: string; expect: ReturnType<typeof expansionOf> }[] = [
  { name: 'no aliases: written and expanded agree (keys count)', yaml: 'a: [1, 2]\nb: {c: d}', expect: { written: 9, expanded: 9 } },
  { name: 'an alias stands for its anchor', yaml: 'a: &a [1, 2]\nb: *a', expect: { written: 7, expanded: 9 } },
  { name: 'merge keys expand too', yaml: 'a: &a {x: 1, y: 2}\nb: {<<: *a, z: 3}', expect: { written: 13, expanded: 17 } },
  { name: 'a chain of anchors multiplies', yaml: 'a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]', expect: { written: 13, expanded: 29 } },
  { name: 'an alias names the last anchor of its name before it', yaml: 'a: &a [1]\nb: &a [1, 2, 3]\nc: *a', expect: { written: 11, expanded: 14 } },
  { name: 'an alias to no anchor counts as written (the yaml library refuses it)', yaml: 'a: *nope', expect: { written: 3, expanded: 3 } },
  { name: 'an alias inside its own anchor', yaml: 'a: &x [1, {b: *x}]', expect: { cycle: 'x' } },
];

for (const c of cases) {
  test(c.name, () => {
    assert.deepEqual(expansionOf(parseDocument(c.yaml, { merge: true })), c.expect);
  });
}

test('a billion laughs is counted without being built', () => {
  // Each anchor is counted once: ten levels of ten aliases stand for 10^10 values, counted in about 120 steps.
  const levels = Array.from({ length: 10 }, (_, i) => `l${i}: &l${i} [${Array(10).fill(i === 0 ? 'x' : `*l${i - 1}`).join(', ')}]`);
  const size = expansionOf(parseDocument(levels.join('\n')));
  assert.ok('expanded' in size && size.expanded > 1e10, JSON.stringify(size));
});
