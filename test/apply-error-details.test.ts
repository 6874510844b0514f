// What a refused apply says: each problem names its document as the request numbers them and the field at fault,
// and the answer stays small however many problems there are. YAML errors were `(body)`; build problems were `[i]`
// with the store's own `admin-api document N (Kind/name): ` (another N) left in the message; one template listing
// 350,000 refs to an unknown kind answered 173 MB, each problem repeating the list of known kinds.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { CommanderError } from 'commander';
import { applyCommand, deleteCommand } from '../src/cli/apply.js';
import { call } from './helpers/apim-admin.js';
import { APIM_V1 as V, useContractGateway } from './helpers/contract-gateway.js';
import { manifest } from './helpers/manifests.js';

const g = useContractGateway('apply-error-details', [manifest('APIMExtensionPolicy', 'ext', { targetRef: { name: 'tollgate' } })]);
const dir = mkdtempSync(join(tmpdir(), 'tollgate-apply-error-details-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const doc = (kind: string, name: string, spec: unknown) => ({ apiVersion: V, kind, metadata: { name }, spec });
const details = (body: { error: { details: { path: string; message: string }[] } }) => body.error.details;

/** `tollgate apply|delete -f file` against the gateway: the exit code and what it wrote to stderr. */
async function cli(command: typeof applyCommand, file: string): Promise<{ code: number; err: string[] }> {
  const err: string[] = [];
  try {
    await command({ out: () => {}, err: (l) => err.push(l), env: {} }).exitOverride().parseAsync(['-f', file, '--admin', g.gw.adminUrl], { from: 'user' });
    return { code: 0, err };
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    return { code: e.exitCode, err };
  }
}

async function file(name: string, docs: unknown[]): Promise<string> {
  const path = join(dir, `${name}.yaml`);
  // An empty document first: the file's numbers are one more than the request's.
  await writeFile(path, `---\n---\n${docs.map((d) => JSON.stringify(d)).join('\n---\n')}\n`);
  return path;
}

test('a YAML document that cannot be read is named by its index, empty documents counted', async () => {
  const ok = (name: string) => `apiVersion: ${V}\nkind: SpikeArrest\nmetadata: {name: ${name}}\nspec: {rate: 1ps}\n`;
  const duplicateKey = `apiVersion: ${V}\nkind: SpikeArrest\nkind: Quota\nmetadata: {name: c}\nspec: {rate: 1ps}\n`;
  const aliasBomb = `a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n${ok('c')}`;
  for (const bad of [duplicateKey, aliasBomb]) {
    const body = [ok('a'), '', ok('b'), bad, ok('d')].join('---\n');
    const r = await request(`${g.gw.adminUrl}/v1/apply`, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body });
    assert.equal(r.statusCode, 400);
    const answer = (await r.body.json()) as Parameters<typeof details>[0];
    assert.deepEqual(details(answer).map((d) => d.path), ['[3]'], JSON.stringify(answer));
    assert.match(details(answer)[0].message, /^YAML: /);
  }
});

test('a build problem points at the request document and its field, without the store\'s numbering; the CLI at the file', async () => {
  const docs = [
    doc('SpikeArrest', 'sa', { rate: '1ps' }),
    doc('Quota', 'q', { allow: 5, interval: 1, timeUnit: 'minute' }),
    doc('ApimTemplate', 't', { templates: [{ policies: [{ kind: 'SpikeArrest', name: 'sa' }] }, { condition: "request.path.startsWith('/v1/'", policies: [{ kind: 'Quota', name: 'q' }] }] }),
  ];
  const r = await call(g.gw.adminUrl, 'POST', '/v1/apply', docs);
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.deepEqual(details(r.body).map((d) => d.path), ['[2].spec.templates[1].condition']);
  assert.match(details(r.body)[0].message, /^not a CEL expression: /);

  const path = await file('condition', docs);
  const printed = await cli(applyCommand, path);
  assert.equal(printed.code, 1);
  assert.equal(printed.err.length, 2, printed.err.join('\n'));
  assert.match(printed.err[1], new RegExp(`^tollgate apply: ${path} document 3 \\(ApimTemplate/t\\): spec\\.templates\\[1\\]\\.condition: not a CEL expression: `));
});

test('a build problem about a stored object names it by kind and name, not by the store\'s document number', async () => {
  const docs = [doc('SpikeArrest', 'sa', { rate: '1ps' }), doc('ApimTemplate', 't', { templates: [{ policies: [{ kind: 'SpikeArrest', name: 'sa' }] }] })];
  assert.equal((await call(g.gw.adminUrl, 'POST', '/v1/apply', docs)).status, 200);
  const r = await call(g.gw.adminUrl, 'POST', '/v1/delete', docs.slice(0, 1));
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.deepEqual(details(r.body), [{ path: '', message: 'ApimTemplate/t: spec.templates[0].policies[0].name: no SpikeArrest named "sa"' }]);

  const printed = await cli(deleteCommand, await file('stored', docs.slice(0, 1)));
  assert.equal(printed.code, 1);
  assert.deepEqual(printed.err.slice(1), ['tollgate delete: ApimTemplate/t: spec.templates[0].policies[0].name: no SpikeArrest named "sa"']);
});

test('thousands of problems: the first 100 and how many more, the known kinds said once', async () => {
  // As many as a template entry may hold (MAX_TEMPLATE_POLICIES), each of a kind that does not exist.
  const n = 1000;
  const refs = Array.from({ length: n }, (_, i) => ({ kind: 'X', name: `p${i}` }));
  const r = await call(g.gw.adminUrl, 'POST', '/v1/apply', [doc('ApimTemplate', 'many', { templates: [{ policies: refs }] })]);
  assert.equal(r.status, 400);
  const listed = details(r.body);
  assert.equal(listed.length, 101);
  assert.deepEqual(listed[100], { path: '', message: `and ${n - 100} more, not listed` });
  assert.equal(listed[0].path, '[0].spec.templates[0].policies[0].kind');
  assert.match(listed[0].message, /^unknown policy kind "X" \(known: VerifyAPIKey, /);
  assert.deepEqual(listed[99], { path: '[0].spec.templates[0].policies[99].kind', message: 'unknown policy kind "X" (known: as listed above)' });
});
