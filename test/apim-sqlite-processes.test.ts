// Two `tollgate serve` processes on one SQLite file (two replicas on one host with the default store): what is
// changed through one process's admin API takes effect on the other within a second, as it does between replicas on
// PostgreSQL. Before, nothing carried changes between them: a key revoked through one kept working on the other
// until it restarted. And a third started by mistake in one's working directory, refused because that one holds its
// analytics spool, must be refused before it writes its own files' products into the shared store.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from '../src/sim/testing.js';
import { appPath, call, createApp } from './helpers/apim-admin.js';
import { poolAndModelYaml } from './helpers/manifests.js';
import { chat, freePorts, kill, refusal, runCli, send, statusOf, tempDir, untilPrinted, type Cli } from './helpers/cli-run.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';

/** An auto-approved product and its operation set, with a quota of `limit` a minute. */
const productYaml = (name: string, limit: number) => `apiVersion: apim.googleapis.com/v1
kind: APIProduct
metadata: { name: ${name} }
spec: { displayName: ${name}, approvalType: auto }
---
apiVersion: apim.googleapis.com/v1
kind: APIOperationSet
metadata: { name: ${name}-ops }
spec:
  apiProductRefs: [{ name: ${name} }]
  quota: { limit: ${limit}, interval: 1, timeUnit: minute }
`;

const API_KEYS = `apiVersion: apim.googleapis.com/v1
kind: APIMExtensionPolicy
metadata: { name: ext }
spec: { defaultSecurityEnabled: true, targetRef: { name: tollgate, kind: Gateway } }
`;

/** The bound for a revoked key on every replica. */
const WITHIN_MS = 1000;

let stub: Stub;
const gateways: { cli: Cli; port: number; admin: string; cwd: string }[] = [];
let sharedDb = '';

before(async () => {
  stub = await startStub();
  const dir = await tempDir();
  // One file in a directory of its own, as a shared volume would hold it; each process in a working directory of its
  // own, so each has its own analytics spool (./.tollgate/analytics).
  const config = join(dir, 'gateway.yaml');
  await writeFile(config, [poolAndModelYaml(stub.url), API_KEYS, productYaml('gold', 1000)].join('---\n'));
  const db = (sharedDb = `sqlite:${join(dir, 'shared.db')}`);
  for (const name of ['a', 'b']) {
    const cwd = join(dir, name);
    await mkdir(cwd);
    const [port, adminPort] = await freePorts(2);
    const cli = runCli(['serve', '--config', config, '--port', String(port), '--admin-port', String(adminPort), '--db', db], cwd);
    await untilPrinted(cli, /tollgate is serving/, `serve ${name}`);
    gateways.push({ cli, port, admin: `http://127.0.0.1:${adminPort}`, cwd });
  }
});

after(async () => {
  await Promise.all(gateways.map((g) => kill(g.cli.child)));
  await stub?.close();
});

const status = async (port: number, key: string) => statusOf(await send(`http://127.0.0.1:${port}/v1/chat/completions`, chat('m', { 'x-api-key': key })));

/** Polls until `port` answers `key` with `expected`; how long that took. */
async function answeredWithin(port: number, key: string, expected: number): Promise<number> {
  const start = performance.now();
  await waitFor(async () => (await status(port, key)) === expected, 10_000, `${expected} for the key on :${port}`, 20);
  return performance.now() - start;
}

test('a key issued through one process works on the other, and once revoked there stops working on both within a second', async () => {
  const [a, b] = gateways;
  const issued = await createApp(a.admin, ['gold']);
  assert.equal(await status(a.port, issued.key), 200);
  const learnt = await answeredWithin(b.port, issued.key, 200);
  assert.ok(learnt < WITHIN_MS, `the issued key worked on the other process after ${learnt.toFixed(0)} ms`);
  // Quotas are still counted by each process on its own (memory counters): said once, when another process is seen.
  const warning = /another tollgate process changes this store, and counters are kept in memory/;
  await waitFor(() => warning.test(b.cli.stdout), 5000, "B's warning of counters kept per process", 20);
  assert.doesNotMatch(a.cli.stdout, warning, 'A has seen no change of another process yet');

  const revoked = await call(a.admin, 'POST', appPath(issued, `/keys/${issued.keyId}?action=revoke`));
  assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
  assert.equal(await status(a.port, issued.key), 401);
  const refused = await answeredWithin(b.port, issued.key, 401);
  assert.ok(refused < WITHIN_MS, `the revoked key was refused by the other process after ${refused.toFixed(0)} ms`);
});

test('an app revoked, and a product applied, through one process hold on the other', async () => {
  const [a, b] = gateways;
  const issued = await createApp(b.admin, ['gold']);
  assert.ok((await answeredWithin(a.port, issued.key, 200)) < WITHIN_MS);
  assert.equal((await call(b.admin, 'POST', `${appPath(issued)}?action=revoke`)).status, 200);
  assert.ok((await answeredWithin(a.port, issued.key, 401)) < WITHIN_MS);

  // A product applied through A, with a quota of 1 a minute: an app made on it through B's admin API is served by
  // B's data plane (whose policies must know the product) and counted against that quota.
  const applied = await send(`${a.admin}/v1/apply`, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: productYaml('silver', 1) });
  assert.equal(statusOf(applied), 200, JSON.stringify(applied));
  const silver = await createApp(b.admin, ['silver']);
  assert.ok((await answeredWithin(b.port, silver.key, 200)) < WITHIN_MS);
  assert.equal(await status(b.port, silver.key), 429);
});

test('a serve refused because another process holds its analytics directory leaves the shared store as it found it', async () => {
  const [a, b] = gateways;
  assert.equal(b.cli.stdout.match(/another tollgate process changes this store/g)?.length, 1, 'told once');
  // In A's working directory (its analytics spool), with files that rename A's product: the mistake of a command typed
  // in the wrong terminal. It is refused (exit 2) before it opens the store, which would have replaced gold by its own.
  const dir = await tempDir();
  const config = join(dir, 'other.yaml');
  await writeFile(config, [poolAndModelYaml(stub.url), API_KEYS, productYaml('gold-renamed', 5)].join('---\n'));
  const [port, adminPort] = await freePorts(2);
  const lines = await refusal(['serve', '--config', config, '--port', String(port), '--admin-port', String(adminPort), '--db', sharedDb], gateways[0].cwd);
  assert.match(lines.join('\n'), /analytics directory .* is in use by process/);
  assert.equal((await call(a.admin, 'GET', '/v1/apiproducts/gold')).status, 200);
  assert.equal((await call(a.admin, 'GET', '/v1/apiproducts/gold-renamed')).status, 404);
  assert.deepEqual((await call(a.admin, 'GET', '/v1/audit?resourceName=gold-renamed')).body.items, []);
  const issued = await createApp(a.admin, ['gold']);
  assert.equal(await status(a.port, issued.key), 200);
});
