// The runner names every failed test again above the summary: read from a real node:test TAP report.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FailureLog } from '../scripts/test-failures.mjs';

const FIXTURE = `
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
describe('outer suite', () => {
  describe('inner suite', () => {
    test('passes', () => {});
    test('compares wrongly', () => assert.equal(1 + 1, 3, 'sums differ'));
  });
  test('is skipped', { skip: 'not here' }, () => {});
});
test('throws at top level', () => { throw new Error('top-level trouble'); });
test('also passes', () => {});
`;

test('the failures of a TAP report are listed above its summary, with their errors; passes, skips and parents are not', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-failures-'));
  try {
    writeFileSync(join(dir, 'fixture.test.mjs'), FIXTURE);
    // Without the variable that tells a child it runs under this test runner, it runs its own report.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const run = spawnSync(process.execPath, ['--test', '--test-reporter=tap', 'fixture.test.mjs'], { cwd: dir, encoding: 'utf8', env });
    assert.equal(run.status, 1, run.stderr);
    const log = new FailureLog();
    const passed = run.stdout.split('\n').flatMap((line) => log.line(line));
    const end = log.end();
    // Every line of the report is printed once, the summary last.
    assert.deepEqual([...passed, ...end.slice(end.findIndex((l) => l.startsWith('# tests ')))], run.stdout.split('\n'));
    const listed = end.slice(0, end.findIndex((l) => l.startsWith('# tests ')));
    assert.equal(listed[0], '# 2 failed:');
    const names = listed.filter((l) => l.startsWith('# ✖'));
    assert.deepEqual(names, ['# ✖ outer suite › inner suite › compares wrongly', '# ✖ throws at top level']);
    const text = listed.join('\n');
    assert.match(text, /sums differ/);
    assert.match(text, /top-level trouble/);
    assert.doesNotMatch(text, /passes|is skipped/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a report that ends without a summary (the runner was killed) still lists its failures', () => {
  const log = new FailureLog();
  const report = ['# Subtest: a', 'not ok 1 - a', '  ---', "  error: 'boom'", '  ...'];
  assert.deepEqual(report.flatMap((l) => log.line(l)), report);
  assert.deepEqual(log.end(), ['# 1 failed:', '# ✖ a', "#     error: 'boom'"]);
});
