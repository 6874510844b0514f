// `tollgate apply`, `delete` and `get` in-process against a served admin router (SQLite): output lines, dry run, exit codes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { registerApimAdminRoutes } from '../src/apim/admin-routes.js';
import { applyCommand, deleteCommand } from '../src/cli/apply.js';
import { getCommand } from '../src/cli/get.js';
import { readManifestFiles } from '../src/config/files.js';
import type { ConfigError } from '../src/config/manifest.js';
import { AdminRouter } from '../src/gateway/admin-router.js';
import { openDatabase, type Database } from '../src/store/index.js';

const TOKEN = 'cli-admin-token';

const product = (name: string, displayName = 'Gold') => `apiVersion: apim.googleapis.com/v1
kind: APIProduct
metadata: { name: ${name} }
spec: { displayName: ${displayName} }
`;

const operationSet = (name: string, productName: string) => `apiVersion: apim.googleapis.com/v1
kind: APIOperationSet
metadata: { name: ${name} }
spec:
  apiProductRefs: [{ name: ${productName} }]
`;

async function serve(router: AdminRouter): Promise<{ url: string; server: Server }> {
  const server = createServer(router.handle).listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

const COMMANDS = { apply: applyCommand, delete: deleteCommand, get: getCommand };

/** Runs `tollgate apply|delete|get ARGS` as main() would, capturing everything it writes. */
async function run(verb: keyof typeof COMMANDS, args: string[], env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  let help = '';
  const command = COMMANDS[verb]({ out: (l) => out.push(l), err: (l) => err.push(l), env })
    .exitOverride()
    .configureOutput({ writeOut: (s) => (help += s), writeErr: (s) => err.push(s) });
  const program = new Command('tollgate').exitOverride().addCommand(command);
  try {
    await program.parseAsync([verb, ...args], { from: 'user' });
    return { code: 0, out, err, help };
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    return { code: e.exitCode, commanderCode: e.code, out, err, help };
  }
}

const apply = (args: string[], env?: NodeJS.ProcessEnv) => run('apply', args, env);
const del = (args: string[], env?: NodeJS.ProcessEnv) => run('delete', args, env);
const get = (args: string[], env?: NodeJS.ProcessEnv) => run('get', args, env);

describe('tollgate apply, delete and get', () => {
  let dir: string;
  let db: Database;
  let open: { url: string; server: Server };
  let guarded: { url: string; server: Server };
  const fileOwned = new Set(['APIProduct/owned']);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tollgate-apply-'));
    db = await openDatabase(`sqlite:${join(dir, 'test.db')}`);
    const deps = { db, fileOwned: (kind: string, name: string) => fileOwned.has(`${kind}/${name}`) };
    const router = new AdminRouter(undefined);
    registerApimAdminRoutes(router, deps);
    open = await serve(router);
    const withToken = new AdminRouter(TOKEN);
    registerApimAdminRoutes(withToken, deps);
    guarded = await serve(withToken);
  });
  after(async () => {
    for (const s of [open?.server, guarded?.server]) {
      s?.closeAllConnections();
      s?.close();
    }
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function files(name: string, contents: Record<string, string>): Promise<string> {
    const path = join(dir, name);
    await mkdir(path);
    for (const [file, text] of Object.entries(contents)) await writeFile(join(path, file), text);
    return path;
  }

  test('applies a directory, one line per result; again: unchanged', async () => {
    const path = await files('good', { 'a-products.yaml': product('gold'), 'b-sets.yaml': operationSet('chat', 'gold') });
    const first = await apply(['-f', path, '--admin', open.url]);
    assert.equal(first.code, 0, first.err.join('\n'));
    assert.deepEqual(first.out, ['apiproduct/gold created', 'apioperationset/chat created']);
    assert.equal((await db.products.get('gold')).displayName, 'Gold');
    const again = await apply(['-f', join(path, 'a-products.yaml'), '-f', join(path, 'b-sets.yaml'), '--admin', open.url]);
    assert.deepEqual(again.out, ['apiproduct/gold unchanged', 'apioperationset/chat unchanged']);
  });

  test('--dry-run reports and writes nothing', async () => {
    const path = await files('dry', { 'p.yaml': product('silver') });
    const r = await apply(['-f', path, '--admin', open.url, '--dry-run']);
    assert.equal(r.code, 0, r.err.join('\n'));
    assert.deepEqual(r.out, ['apiproduct/silver created (dry run)']);
    assert.equal(await db.products.find('silver'), undefined);
  });

  test('a rule that objects applied before now break: applied, and each violation printed as a warning, dry run or not', async () => {
    const template = `apiVersion: apim.googleapis.com/v1
kind: SpikeArrest
metadata: { name: burst }
spec: { rate: 10ps }
---
apiVersion: apim.googleapis.com/v1
kind: ApimTemplate
metadata: { name: shaped }
spec:
  templates: [{ policies: [{ kind: SpikeArrest, name: burst }] }]
`;
    const rule = `apiVersion: apim.googleapis.com/v1
kind: ApimTemplateRule
metadata: { name: no-spike }
spec: { denyList: [{ kind: SpikeArrest }] }
`;
    const path = await files('governed', { 'template.yaml': template, 'rule.yaml': rule });
    assert.equal((await apply(['-f', join(path, 'template.yaml'), '--admin', open.url])).code, 0);
    const warning = 'ApimTemplate/shaped breaks ApimTemplateRule/no-spike: SpikeArrest is on the denyList';
    const dry = await apply(['-f', join(path, 'rule.yaml'), '--admin', open.url, '--dry-run']);
    assert.equal(dry.code, 0);
    assert.deepEqual(dry.out, ['apimtemplaterule/no-spike created (dry run)']);
    assert.deepEqual(dry.err, [`tollgate apply: warning: ${warning} (dry run)`]);
    const real = await apply(['-f', join(path, 'rule.yaml'), '--admin', open.url]);
    assert.equal(real.code, 0);
    assert.deepEqual(real.out, ['apimtemplaterule/no-spike created']);
    assert.deepEqual(real.err, [`tollgate apply: warning: ${warning}`]);
  });

  test('a bad file: exit code 2, errors name file, document and field, nothing sent', async () => {
    const path = await files('bad', { 'p.yaml': `${product('bronze')}---\n${product('tin').replace('displayName: Gold', 'displayName: 5, approvalType: never')}` });
    const r = await apply(['-f', path, '--admin', open.url]);
    assert.equal(r.code, 2);
    assert.equal(r.err.length, 2, r.err.join('\n'));
    assert.match(r.err[0], /bad\/p\.yaml document 1 \(APIProduct\/tin\): spec\.displayName: /);
    assert.match(r.err[1], /bad\/p\.yaml document 1 \(APIProduct\/tin\): spec\.approvalType: /);
    assert.equal(await db.products.find('bronze'), undefined);

    const pool = await files('pool', { 'pool.yaml': 'apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata: { name: p }\nspec: {}\n' });
    const refused = await apply(['-f', pool, '--admin', open.url]);
    assert.equal(refused.code, 2);
    assert.match(refused.err[0], /pool\.yaml document 0 \(InferencePool\/p\): kind: .*--config files/);

    const dup = await files('dup', { 'a.yaml': product('twin'), 'b.yaml': product('twin') });
    const twice = await apply(['-f', dup, '--admin', open.url]);
    assert.equal(twice.code, 2);
    assert.match(twice.err[0], /b\.yaml document 0 \(APIProduct\/twin\): metadata\.name: also defined in .*a\.yaml document 0/);

    assert.equal((await apply(['-f', join(dir, 'missing.yaml'), '--admin', open.url])).code, 2);
    assert.equal((await apply(['-f', await files('empty', {}), '--admin', open.url])).code, 2);
  });

  test('files are read as serve reads them: merge keys, document numbers counting empty documents, non-UTF-8 and FIFOs refused', async () => {
    const spike = (name: string, spec: string) => `apiVersion: apim.googleapis.com/v1\nkind: SpikeArrest\nmetadata: { name: ${name} }\nspec: ${spec}\n`;
    const path = await files('as-serve', {
      // The anchor in the same document (annotations), as the yaml library reads anchors per document.
      'merge.yaml': `apiVersion: apim.googleapis.com/v1
kind: SpikeArrest
metadata:
  name: spike-b
  annotations: &common { rate: 10ps }
spec:
  <<: *common
  identifier: { ref: developer.app.id }
`,
      'index.yaml': `---\n# only a comment\n---\n${spike('s1', '{ rate: 10ps }')}---\n${spike('s2', '{ rate: fast }')}`,
    });
    await writeFile(join(path, 'latin1.yaml'), Buffer.concat([Buffer.from(product('cafe', '"caf')), Buffer.from([0xe9]), Buffer.from('"\n')]));
    execFileSync('mkfifo', [join(path, 'fifo.yaml')]);
    const serve = (file: string) => {
      try {
        readManifestFiles([join(path, file)]);
        return [];
      } catch (err) {
        return (err as ConfigError).problems;
      }
    };

    const merged = await apply(['-f', join(path, 'merge.yaml'), '--admin', open.url, '--dry-run']);
    // (An earlier test's ApimTemplateRule warns about every SpikeArrest: the warning is no problem.)
    assert.deepEqual([merged.code, merged.out, serve('merge.yaml')], [0, ['spikearrest/spike-b created (dry run)'], []]);
    for (const file of ['index.yaml', 'latin1.yaml', 'fifo.yaml']) {
      const r = await apply(['-f', join(path, file), '--admin', open.url, '--dry-run']);
      assert.equal(r.code, 2, file);
      assert.deepEqual(r.err.map((l) => l.replace(/^tollgate apply: /, '')), serve(file), file);
    }
    assert.match(serve('index.yaml')[0], /index\.yaml document 2 \(SpikeArrest\/s2\): spec\.rate: /);
    assert.deepEqual([serve('latin1.yaml'), serve('fifo.yaml')], [[`${join(path, 'latin1.yaml')}: not UTF-8 text`], [`${join(path, 'fifo.yaml')}: not a regular file`]]);
  });

  test('the server refuses: exit code 1 with its errors pointed at the file', async () => {
    const path = await files('owned', { 'p.yaml': `${product('copper')}---\n${product('owned')}` });
    const r = await apply(['-f', path, '--admin', open.url]);
    assert.equal(r.code, 1);
    assert.match(r.err[0], /HTTP 409/);
    assert.match(r.err[1], /owned\/p\.yaml document 1 \(APIProduct\/owned\): \(document\): APIProduct\/owned is declared in --config files/);
    assert.equal(await db.products.find('copper'), undefined, 'all or none');
  });

  test('sends TOLLGATE_ADMIN_TOKEN as a bearer token', async () => {
    const path = await files('token', { 'p.yaml': product('zinc') });
    const without = await apply(['-f', path, '--admin', guarded.url]);
    assert.equal(without.code, 1);
    assert.match(without.err[0], /HTTP 401/);
    const withToken = await apply(['-f', path, '--admin', guarded.url], { TOLLGATE_ADMIN_TOKEN: TOKEN });
    assert.deepEqual(withToken.out, ['apiproduct/zinc created']);
    const audit = await db.audit.list({ resourceType: 'apiproduct', resourceName: 'zinc' });
    assert.equal(audit.items[0].actor, 'admin');
  });

  test('an unreachable gateway is exit code 1; a bad --admin is a usage error', async () => {
    const path = await files('unreachable', { 'p.yaml': product('lead') });
    const closed = createServer().listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    closed.close();
    const r = await apply(['-f', path, '--admin', `http://127.0.0.1:${port}`]);
    assert.equal(r.code, 1);
    assert.match(r.err[0], /cannot reach the admin API/);
    assert.equal((await apply(['-f', path, '--admin', 'not a url'])).commanderCode, 'commander.invalidArgument');
    assert.equal((await apply([])).commanderCode, 'commander.missingMandatoryOptionValue');
  });

  test('--help lists the flags', async () => {
    for (const r of [await apply(['--help']), await del(['--help'])]) {
      assert.equal(r.commanderCode, 'commander.helpDisplayed');
      for (const flag of ['-f, --file', '--admin', '--dry-run']) assert.ok(r.help.includes(flag), flag);
    }
    assert.ok((await del(['--help'])).help.includes('--force'));
  });

  test('delete removes what the files name, one line per result; again: not found', async () => {
    const path = await files('doomed', { 'a-products.yaml': product('doomed'), 'b-sets.yaml': operationSet('doomed-chat', 'doomed') });
    assert.equal((await apply(['-f', path, '--admin', open.url])).code, 0);
    const dry = await del(['-f', path, '--admin', open.url, '--dry-run']);
    assert.deepEqual(dry.out, ['apiproduct/doomed deleted (dry run)', 'apioperationset/doomed-chat deleted (dry run)']);
    assert.ok(await db.products.find('doomed'), 'a dry run deletes nothing');
    const first = await del(['-f', path, '--admin', open.url]);
    assert.equal(first.code, 0, first.err.join('\n'));
    assert.deepEqual(first.out, ['apiproduct/doomed deleted', 'apioperationset/doomed-chat deleted']);
    assert.equal(await db.products.find('doomed'), undefined);
    assert.equal(await db.operationSets.find('doomed-chat'), undefined);
    const again = await del(['-f', path, '--admin', open.url]);
    assert.equal(again.code, 0);
    assert.deepEqual(again.out, ['apiproduct/doomed not found', 'apioperationset/doomed-chat not found']);
    const audit = await db.audit.list({ resourceType: 'apiproduct', resourceName: 'doomed' });
    assert.equal(audit.items[0].action, 'delete');
  });

  test('delete reads only kind and name: an object whose spec no longer validates is deleted by its file', async () => {
    // As a manifest an older version accepted would be stored.
    await db.manifests.apply({ kind: 'SpikeArrest', name: 'legacy', apiVersion: 'apim.googleapis.com/v1', spec: { rate: 'very fast' } });
    const text = 'apiVersion: apim.googleapis.com/v1\nkind: SpikeArrest\nmetadata: { name: legacy }\nspec: { rate: very fast }\n';
    const path = await files('legacy', { 's.yaml': text });
    assert.equal((await apply(['-f', path, '--admin', open.url])).code, 2, 'apply validates the spec');
    const r = await del(['-f', path, '--admin', open.url]);
    assert.equal(r.code, 0, r.err.join('\n'));
    assert.deepEqual(r.out, ['spikearrest/legacy deleted']);
    assert.equal(await db.manifests.find('SpikeArrest', 'legacy'), undefined);
  });

  test('delete: a nameless document or a gateway kind is exit code 2; a file-owned object exit code 1, nothing deleted', async () => {
    const bad = await files('delete-bad', { 'a.yaml': 'apiVersion: apim.googleapis.com/v1\nkind: SpikeArrest\nmetadata: {}\n---\napiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata: { name: p }\n' });
    const r = await del(['-f', bad, '--admin', open.url]);
    assert.equal(r.code, 2);
    assert.match(r.err[0], /a\.yaml document 0 \(SpikeArrest\/undefined\): metadata\.name: a name is required/);
    assert.match(r.err[1], /a\.yaml document 1 \(InferencePool\/p\): kind: .*--config files/);

    await db.products.apply({ name: 'kept' });
    const owned = await files('delete-owned', { 'p.yaml': `${product('kept')}---\n${product('owned')}` });
    const refused = await del(['-f', owned, '--admin', open.url]);
    assert.equal(refused.code, 1);
    assert.match(refused.err[0], /HTTP 409/);
    assert.match(refused.err[1], /delete-owned\/p\.yaml document 1 \(APIProduct\/owned\): \(document\): APIProduct\/owned is declared in --config files/);
    assert.ok(await db.products.find('kept'), 'all or none');
  });

  test('get shows a kind as a table, or as YAML that apply takes back unchanged; one object as JSON', async () => {
    const path = await files('shown', { 'a-products.yaml': product('shown', 'Shown'), 'b-sets.yaml': `${operationSet('shown-a', 'shown')}---\n${operationSet('shown-b', 'shown')}` });
    assert.equal((await apply(['-f', path, '--admin', open.url])).code, 0);
    const listed = await get(['apioperationset', '--admin', open.url]);
    assert.equal(listed.code, 0, listed.err.join('\n'));
    assert.match(listed.out[0], /^NAME +OWNER +LAST MODIFIED$/);
    const rows = listed.out.slice(1).filter((l) => l.startsWith('shown-'));
    assert.deepEqual(rows.map((l) => l.split(/ +/).slice(0, 2)), [['shown-a', 'api'], ['shown-b', 'api']]);

    const yaml = await get(['APIOperationSet', '-o', 'yaml', '--admin', open.url]);
    const exported = await files('exported', { 'sets.yaml': yaml.out.join('\n') });
    const reapplied = await apply(['-f', exported, '--admin', open.url]);
    assert.equal(reapplied.code, 0, reapplied.err.join('\n'));
    assert.ok(reapplied.out.length >= 2 && reapplied.out.every((l) => l.endsWith(' unchanged')), reapplied.out.join('\n'));

    const one = await get(['apiproduct', 'shown', '-o', 'json', '--admin', open.url]);
    const doc = JSON.parse(one.out.join('\n'));
    assert.deepEqual([doc.kind, doc.metadata.name, doc.spec.displayName], ['APIProduct', 'shown', 'Shown']);

    const missing = await get(['spikearrest', 'nothing', '--admin', open.url]);
    assert.equal(missing.code, 1);
    assert.match(missing.err[0], /HTTP 404/);
    assert.equal((await get(['quota', '--admin', open.url])).out[0], 'no Quota objects');
    assert.equal((await get(['inferencepool', '--admin', open.url])).commanderCode, 'commander.invalidArgument');
  });
});
