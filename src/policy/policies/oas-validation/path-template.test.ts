// OpenAPI path templates: the same meaning as the regular expression they replace (`[^/]+` per parameter), checked
// over every short path; and the work counted (no timing) on the shape that made that expression cubic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countReads } from '../../../lib/count-reads.js';
import { compilePathTemplate } from './path-template.js';

/** The meaning: each `{parameter}` one or more characters other than `/` (the regular expression used before). */
function meaning(template: string): RegExp {
  const source = template
    .split(/(\{[^}]+\})/)
    .map((part) => (part.startsWith('{') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`);
}

test('templates match what `[^/]+` per parameter matched, over every short path', () => {
  const templates = ['/', '/a', '/{x}', '/a/{x}', '/{x}/{y}', '/{x}.{y}', '/{x}-{y}-{z}', '/{x}{y}', '/a{x}a', '/{x}/a.b', '/(a)+.{x}'];
  const paths = [''];
  for (let len = 1; len <= 6; len++) for (const p of paths.filter((s) => s.length === len - 1)) for (const c of '/a.-') paths.push(p + c);
  paths.push('/(a)+.x', '/(aa.x');
  for (const template of templates) {
    const t = compilePathTemplate(template);
    const re = meaning(template);
    for (const path of paths) assert.equal(t.test(path), re.test(path), `${template} against ${path}`);
  }
});

test('a path is read once, with no regular expression that could backtrack', () => {
  // With `[^/]+-[^/]+-[^/]+`, a segment of 8,000 dashes took 66 s (every way to share it between the three).
  const t = compilePathTemplate('/files/{a}-{b}-{c}');
  const path = `/files/${'-'.repeat(600)}/`;
  const { result: matched, reads, regexRuns } = countReads(() => t.test(path));
  assert.equal(matched, false);
  assert.equal(regexRuns, 0);
  assert.ok(reads <= path.length, `${reads} reads for ${path.length} characters`);
  assert.equal(t.test(`/files/${'-'.repeat(600)}`), true);
});

test('parameter values are what `([^/]+)` per parameter captures, over every short path', () => {
  const templates = ['/{x}', '/a/{x}', '/{x}/{y}', '/{x}.{y}', '/{x}-{y}-{z}', '/{x}{y}', '/a{x}a', '/{x}/a.b', '/{x}.a.{y}.b', '/{x}..{y}'];
  const paths = [''];
  for (let len = 1; len <= 7; len++) for (const p of paths.filter((s) => s.length === len - 1)) for (const c of '/a.-') paths.push(p + c);
  for (const template of templates) {
    const t = compilePathTemplate(template);
    const capturing = new RegExp(meaning(template).source.replaceAll('[^/]+', '([^/]+)'));
    assert.deepEqual(t.names, [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]));
    for (const path of paths) {
      const captured = capturing.exec(path);
      if (captured) assert.deepEqual(t.values(path), captured.slice(1), `${template} against ${path}`);
    }
  }
});
