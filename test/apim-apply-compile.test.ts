// An apply is checked the way the gateway builds its policies, not by the schemas alone: a manifest the policy engine
// cannot build (here an OASValidation whose OpenAPI document holds a pattern V8 may take exponential time on and RE2
// cannot run) was stored with 200, left this replica on its last good state, and then stopped every later start of
// the gateway (`ConfigError` from the stored manifest) — with the admin API, the way to remove it, down with it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { call, until } from './helpers/apim-admin.js';
import { APIM_V1 as V, contract, contractSpec, useContractGateway } from './helpers/contract-gateway.js';

const g = useContractGateway('apply-compile');
const chat = g.chat;

test('a manifest the policies cannot be built with is refused (400 naming it, dry run too), nothing is stored, and the gateway still restarts', async () => {
  for (const dryRun of [true, false]) {
    const r = await call(g.gw.adminUrl, 'POST', `/v1/apply${dryRun ? '?dryRun=true' : ''}`, contract('(x+x+)+(?=y)'));
    assert.equal(r.status, 400, JSON.stringify(r.body));
    const details = r.body.error.details as { path: string; message: string }[];
    assert.ok(details.some((d) => d.path === '[1].spec' && d.message.includes('pattern "(x+x+)+(?=y)"')), JSON.stringify(details));
  }
  assert.equal(await g.gw.apim.db.manifests.find('OASValidation', 'contract'), undefined, 'nothing was applied');
  await g.restart();
  // Nothing was applied: no APIMExtensionPolicy, so no policy refuses a request (the model server at :9 is down).
  assert.equal(await chat('anyone'), 503);
});

test('manifests the policies build with are applied as before, and enforced', async () => {
  const r = await call(g.gw.adminUrl, 'POST', '/v1/apply', contract('^u[0-9]+$'));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await new Promise((res) => setTimeout(res, 200));
  // The contract refuses a user its pattern does not match before anything is routed.
  assert.equal(await chat('anyone'), 400);
  assert.equal(await chat('u1'), 503);
});

test('a gateway whose store holds policies it cannot build (written by an older version) starts, refuses every request, and recovers when the admin API fixes them', async () => {
  assert.equal((await call(g.gw.adminUrl, 'POST', '/v1/apply', contract('^u[0-9]+$'))).status, 200);
  // What an older version, which accepted the pattern, could have stored; the admin API now refuses it.
  await g.gw.apim.db.manifests.apply({ kind: 'OASValidation', name: 'contract', apiVersion: V, spec: contractSpec('(x+x+)+(?=y)') });
  // Before: startGateway threw the stored manifest's ConfigError, so neither the data plane nor the admin API came up.
  await g.restart();
  const refused = await fetch(`${g.gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [] }) });
  assert.equal(refused.status, 500);
  assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'extension_failed');
  const ready = await call(g.gw.adminUrl, 'GET', '/readyz');
  assert.equal(ready.status, 503);
  assert.equal(ready.body.policiesBuilt, false);

  assert.equal((await call(g.gw.adminUrl, 'POST', '/v1/apply', contract('^u[0-9]+$'))).status, 200);
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(await chat('anyone'), 400);
  assert.equal(await chat('u1'), 503);
  assert.equal((await call(g.gw.adminUrl, 'GET', '/readyz')).body.policiesBuilt, true);
});

test('...or when the admin API deletes them: the template and the policy it cannot build go, the rest is enforced again', async () => {
  await g.gw.apim.db.manifests.apply({ kind: 'OASValidation', name: 'contract', apiVersion: V, spec: contractSpec('(x+x+)+(?=y)') });
  await g.restart();
  assert.equal((await call(g.gw.adminUrl, 'GET', '/readyz')).body.policiesBuilt, false);
  const r = await call(g.gw.adminUrl, 'POST', '/v1/delete', contract('').slice(1));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await until(() => call(g.gw.adminUrl, 'GET', '/readyz'), (a) => a.body.policiesBuilt === true, 5000, 'policies built');
  assert.equal(await chat('anyone'), 503, 'no contract left to refuse it; the model server is down');
});
