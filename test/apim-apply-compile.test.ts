// An apply is checked the way the gateway builds its policies, not by the schemas alone: a manifest the policy engine
// cannot build (here an OASValidation whose OpenAPI document holds a pattern V8 may take exponential time on and RE2
// cannot run) was stored with 200, left this replica on its last good state, and then stopped every later start of
// the gateway (`ConfigError` from the stored manifest) — with the admin API, the way to remove it, down with it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type Gateway, type GatewayOptions } from '../src/gateway/gateway.js';
import { silentLogger } from '../src/lib/logger.js';
import { call, until } from './helpers/apim-admin.js';
import { poolAndModel } from './helpers/manifests.js';
import type { JsonObject } from '../src/store/index.js';

const V = 'apim.googleapis.com/v1';
const dir = mkdtempSync(join(tmpdir(), 'tollgate-apply-compile-'));
const options: GatewayOptions = {
  configPaths: [],
  manifests: poolAndModel(['http://127.0.0.1:9']),
  port: 0,
  adminPort: 0,
  host: '127.0.0.1',
  watch: false,
  db: `sqlite:${join(dir, 'tollgate.db')}`,
  analyticsDir: join(dir, 'analytics'),
  logger: silentLogger,
};

/** An OASValidation's spec on the chat path whose body schema constrains `user` with `pattern`. */
function contractSpec(pattern: string): JsonObject {
  const schema = { type: 'object', properties: { user: { type: 'string', pattern } } };
  return { openApi: { openapi: '3.0.0', info: { title: 't', version: '1' }, paths: { '/v1/chat/completions': { post: { requestBody: { content: { 'application/json': { schema } } } } } } } };
}

/** That OASValidation, with the extension policy and the template running it. */
function contract(pattern: string) {
  return [
    { apiVersion: V, kind: 'APIMExtensionPolicy', metadata: { name: 'ext' }, spec: { targetRef: { name: 'tollgate' } } },
    { apiVersion: V, kind: 'OASValidation', metadata: { name: 'contract' }, spec: contractSpec(pattern) },
    { apiVersion: V, kind: 'ApimTemplate', metadata: { name: 'checks' }, spec: { templates: [{ policies: [{ kind: 'OASValidation', name: 'contract' }] }] } },
  ];
}

let gw: Gateway | undefined;
before(async () => {
  gw = await startGateway(options);
});
after(async () => {
  await gw?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function chat(user: string): Promise<number> {
  const r = await fetch(`${gw!.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', user, messages: [{ role: 'user', content: 'hi' }] }) });
  await r.arrayBuffer();
  return r.status;
}

test('a manifest the policies cannot be built with is refused (400 naming it, dry run too), nothing is stored, and the gateway still restarts', async () => {
  for (const dryRun of [true, false]) {
    const r = await call(gw!.adminUrl, 'POST', `/v1/apply${dryRun ? '?dryRun=true' : ''}`, contract('(x+x+)+(?=y)'));
    assert.equal(r.status, 400, JSON.stringify(r.body));
    const details = r.body.error.details as { path: string; message: string }[];
    assert.ok(details.some((d) => d.path === '[1]' && d.message.includes('pattern "(x+x+)+(?=y)"')), JSON.stringify(details));
  }
  assert.equal(await gw!.apim.db.manifests.find('OASValidation', 'contract'), undefined, 'nothing was applied');
  await gw!.close();
  gw = await startGateway(options);
  // Nothing was applied: no APIMExtensionPolicy, so no policy refuses a request (the model server at :9 is down).
  assert.equal(await chat('anyone'), 503);
});

test('manifests the policies build with are applied as before, and enforced', async () => {
  const r = await call(gw!.adminUrl, 'POST', '/v1/apply', contract('^u[0-9]+$'));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await new Promise((res) => setTimeout(res, 200));
  // The contract refuses a user its pattern does not match before anything is routed.
  assert.equal(await chat('anyone'), 400);
  assert.equal(await chat('u1'), 503);
});

test('a gateway whose store holds policies it cannot build (written by an older version) starts, refuses every request, and recovers when the admin API fixes them', async () => {
  assert.equal((await call(gw!.adminUrl, 'POST', '/v1/apply', contract('^u[0-9]+$'))).status, 200);
  // What an older version, which accepted the pattern, could have stored; the admin API now refuses it.
  await gw!.apim.db.manifests.apply({ kind: 'OASValidation', name: 'contract', apiVersion: V, spec: contractSpec('(x+x+)+(?=y)') });
  await gw!.close();
  // Before: startGateway threw the stored manifest's ConfigError, so neither the data plane nor the admin API came up.
  gw = await startGateway(options);
  const refused = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [] }) });
  assert.equal(refused.status, 500);
  assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'extension_failed');
  const ready = await call(gw.adminUrl, 'GET', '/readyz');
  assert.equal(ready.status, 503);
  assert.equal(ready.body.policiesBuilt, false);

  assert.equal((await call(gw.adminUrl, 'POST', '/v1/apply', contract('^u[0-9]+$'))).status, 200);
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(await chat('anyone'), 400);
  assert.equal(await chat('u1'), 503);
  assert.equal((await call(gw.adminUrl, 'GET', '/readyz')).body.policiesBuilt, true);
});

test('...or when the admin API deletes them: the template and the policy it cannot build go, the rest is enforced again', async () => {
  await gw!.apim.db.manifests.apply({ kind: 'OASValidation', name: 'contract', apiVersion: V, spec: contractSpec('(x+x+)+(?=y)') });
  await gw!.close();
  gw = await startGateway(options);
  assert.equal((await call(gw.adminUrl, 'GET', '/readyz')).body.policiesBuilt, false);
  const r = await call(gw.adminUrl, 'POST', '/v1/delete', contract('').slice(1));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await until(() => call(gw!.adminUrl, 'GET', '/readyz'), (a) => a.body.policiesBuilt === true, 5000, 'policies built');
  assert.equal(await chat('anyone'), 503, 'no contract left to refuse it; the model server is down');
});
