// `tollgate validate`: the checks `serve` makes of its --config files at start, both stages (each document and the
// cross-references between them; the policies compiled as API management would install them), without serving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateCommand } from './validate.js';
import { runCommand } from './testing.js';

const QUICKSTART = join(import.meta.dirname, '../../examples/quickstart');

function quickstartCopy(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-validate-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(QUICKSTART, dir, { recursive: true });
  return dir;
}

test('the quickstart configuration is valid: exit 0 and the number of documents read', async () => {
  const ran = await runCommand(validateCommand, ['--config', QUICKSTART]);
  assert.equal(ran.code, 0, ran.err.join('\n'));
  assert.match(ran.out.join('\n'), /^configuration ok: \d+ documents$/);
  assert.deepEqual(ran.err, []);
});

test('a document problem is named by file, document, kind/name and field, with exit code 2', async (t) => {
  const dir = quickstartCopy(t);
  writeFileSync(join(dir, 'extra.yaml'), 'apiVersion: apim.googleapis.com/v1\nkind: SpikeArrest\nmetadata: { name: fast }\nspec: { rate: banana }\n');
  const ran = await runCommand(validateCommand, ['--config', dir]);
  assert.equal(ran.code, 2);
  assert.deepEqual(ran.out, []);
  assert.equal(ran.err.length, 1, ran.err.join('\n'));
  assert.match(ran.err[0], /^tollgate: config: .*extra\.yaml document 0 \(SpikeArrest\/fast\): spec\.rate: /);
});

test('a problem only the compiled policies show (a template the governance rules forbid) fails validation too', async (t) => {
  const dir = quickstartCopy(t);
  const apim = join(dir, 'apim.yaml');
  const text = readFileSync(apim, 'utf8');
  const dropped = text.replace(/^\s*- \{ kind: SpikeArrest, name: per-app-spike-arrest \}\n/m, '');
  assert.notEqual(dropped, text, 'the quickstart template lists the SpikeArrest its rule requires');
  writeFileSync(apim, dropped);
  const ran = await runCommand(validateCommand, ['--config', dir]);
  assert.equal(ran.code, 2);
  assert.match(ran.err.join('\n'), /ApimTemplate\/quickstart-template breaks ApimTemplateRule\/platform-rules: SpikeArrest is on the requiredList/);
});

test('a path that does not exist is a configuration problem, not a crash', async () => {
  const ran = await runCommand(validateCommand, ['--config', join(tmpdir(), 'tollgate-no-such-config', 'x.yaml')]);
  assert.equal(ran.code, 2);
  assert.match(ran.err.join('\n'), /no such file or directory/);
});
