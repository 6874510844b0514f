import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAllDocuments } from 'yaml';
import { MAX_JSON_DEPTH } from '../lib/json-depth.js';
import { readDocuments } from './manifest.js';
import { parseYamlStream } from './yaml-stream.js';

/** `depth` nested collections of each shape the parser nests. */
const NESTED: Record<string, (depth: number) => string> = {
  'flow sequences': (d) => `${'['.repeat(d)}a${']'.repeat(d)}`,
  'flow mappings': (d) => `${'{a: '.repeat(d)}b${'}'.repeat(d)}`,
  'block mappings by indentation': (d) => Array.from({ length: d }, (_, i) => `${' '.repeat(i)}k:`).join('\n') + ' v',
  'compact block sequences': (d) => `${'- '.repeat(d)}x`,
  'block and flow together': (d) => `a:\n  b:\n    - ${'['.repeat(d - 3)}c${']'.repeat(d - 3)}`,
};

for (const [shape, nest] of Object.entries(NESTED)) {
  test(`${shape}: ${MAX_JSON_DEPTH} levels are read, one more stops the parser`, () => {
    const fine = parseYamlStream(nest(MAX_JSON_DEPTH));
    assert.equal(fine.tooDeep, undefined);
    assert.deepEqual(fine.docs[0].errors, []);
    const deep = parseYamlStream(nest(MAX_JSON_DEPTH + 1));
    assert.ok(deep.tooDeep, 'refused');
    assert.deepEqual(deep.docs, []);
  });
}

test('nesting the bytes hide from a scan (a quote that a plain scalar continues) is still counted', () => {
  // `"` starts no quoted scalar here: it continues the plain scalar `a`, and `: ` then opens the flow collections.
  const text = `a\n"\nx: ${'['.repeat(100_000)}`;
  assert.equal(parseAllDocuments(text)[0].errors.length > 0, true);
  assert.deepEqual(parseYamlStream(text).tooDeep, { line: 3, col: MAX_JSON_DEPTH + 4 });
});

test('a text of a million [ is refused in milliseconds, with one problem naming the depth', () => {
  // Before: 8 to 11 s, and 785 "Maximum call stack size exceeded" problems.
  const started = performance.now();
  const { raws, problems } = readDocuments('['.repeat(1_000_000), 'admin-api');
  assert.ok(performance.now() - started < 2000, `${performance.now() - started} ms`);
  assert.deepEqual(raws, []);
  assert.deepEqual(
    problems.map((p) => p.line),
    [`admin-api document 0: YAML: nests sequences and mappings more than ${MAX_JSON_DEPTH} levels deep at line 1, column ${MAX_JSON_DEPTH + 2}`],
  );
});

test('a text of errors gives the first of each document, in about the time a text of its size without errors takes', () => {
  // One error per byte after the first collection: 100 KB of them took over 10 s (a stack trace, and a copy of the
  // whole line for its context, per error), a hundred times what as many bytes of good YAML take. Compared with
  // those in the same run, not with a fixed time: the host's speed is no part of what is checked.
  const text = `${'[]'.repeat(50_000)}\n---\nkind: [a\n`;
  const stackTraceLimit = Error.stackTraceLimit;
  const elapsed = (t: string) => {
    const started = performance.now();
    const read = readDocuments(t, 'f.yaml');
    return { ms: performance.now() - started, read };
  };
  const good = elapsed(`${'- []\n'.repeat(20_000)}---\nkind: [a]\n`);
  assert.deepEqual(good.read.problems, []);
  const { ms, read } = elapsed(text);
  const { problems } = read;
  assert.ok(ms < 10 * good.ms + 50, `${ms.toFixed(0)} ms against ${good.ms.toFixed(0)} ms for good YAML of its size`);
  assert.deepEqual(
    problems.map((p) => p.line),
    ['f.yaml document 0: YAML: Unexpected flow-seq-start at node end at line 1, column 3', 'f.yaml document 1: YAML: Flow sequence in block collection must be sufficiently indented and end with a ] at line 4, column 1'],
  );
  assert.equal(Error.stackTraceLimit, stackTraceLimit, 'restored');
});

test('ordinary documents read as parseAllDocuments reads them', () => {
  const text = `a: &x {b: [1, 2]}\nc: *x\n---\n# only a comment\n---\n- "q: [" \n- |\n  [[[\n- <<: {m: 1}\n`;
  const ours = parseYamlStream(text, { merge: true }).docs;
  const theirs = parseAllDocuments(text, { merge: true });
  assert.ok(Array.isArray(theirs));
  assert.deepEqual(
    ours.map((d) => d.toJS()),
    theirs.map((d) => d.toJS()),
  );
  assert.deepEqual(ours.at(-1)?.toJS(), ['q: [', '[[[\n', { m: 1 }]);
});
