// A policy no template lists was never built, so what its factory checks at load (an OASValidation `source` that names
// no readable file, a `pattern` RE2 cannot run, a GenerateJWT `{env}` secret that is unset) was skipped: `serve
// --config` started with them, apply answered `created` and stored them, and the error surfaced only at the later
// change that listed one, pointing at that change. Every declared policy is now built at load and at apply.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, manifestOf } from '../src/config/manifest.js';
import { startGateway } from '../src/gateway/gateway.js';
import { silentLogger } from '../src/lib/logger.js';
import type { JsonObject } from '../src/store/index.js';
import { call } from './helpers/apim-admin.js';
import { APIM_V1 as V, contractSpec, useContractGateway } from './helpers/contract-gateway.js';
import { poolAndModel } from './helpers/manifests.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const UNSET = 'TOLLGATE_TEST_UNLISTED_UNSET';
delete process.env[UNSET];

const doc = (kind: string, name: string, spec: JsonObject) => ({ apiVersion: V, kind, metadata: { name }, spec });
const extension = doc('APIMExtensionPolicy', 'ext', { targetRef: { name: 'tollgate' } });
/** The three the documentation says are refused at load and at apply; no template lists any of them. */
const unbuildable = [
  doc('OASValidation', 'oas-missing-file', { source: '/nonexistent/tollgate/chat.yaml' }),
  doc('OASValidation', 'oas-bad-pattern', contractSpec('(x+x+)+(?=y)')),
  doc('GenerateJWT', 'jwt-unset-env', { algorithm: 'HS256', secretKey: { env: UNSET }, issuer: 'tollgate' }),
];
const MESSAGES = [/not a regular file the gateway can read/, /pattern "\(x\+x\+\)\+\(\?=y\)"/, new RegExp(UNSET)];

const g = useContractGateway('unlisted-policies');

test('--config files declaring them do not start (serve exits 2), each named', async () => {
  for (const apim of [[extension, ...unbuildable], unbuildable]) {
    const manifests = [...poolAndModel(['http://127.0.0.1:9']), ...apim.map((d) => manifestOf(d.kind, d.metadata.name, d.spec, 'apim.yaml'))];
    const started = startGateway({ configPaths: [], manifests, ...LOOPBACK, db: 'sqlite::memory:', logger: silentLogger });
    await assert.rejects(started, (err) => {
      assert.ok(err instanceof ConfigError, String(err));
      for (const [i, d] of unbuildable.entries()) {
        assert.ok(err.problems.some((p) => p.includes(`${d.kind}/${d.metadata.name}`) && MESSAGES[i].test(p)), `${d.metadata.name}: ${err.problems.join('\n')}`);
      }
      return true;
    }, apim.includes(extension) ? 'API management on' : 'API management off');
  }
});

test('apply refuses each (dry run too), naming its document; nothing is stored', async () => {
  for (const dryRun of [true, false]) {
    for (const [i, d] of unbuildable.entries()) {
      const r = await call(g.gw.adminUrl, 'POST', `/v1/apply${dryRun ? '?dryRun=true' : ''}`, [extension, d]);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      const details: { path: string; message: string }[] = r.body.error.details;
      assert.ok(details.some((p) => p.path.startsWith('[1]') && MESSAGES[i].test(p.message)), JSON.stringify(details));
      assert.equal(await g.gw.apim.db.manifests.find(d.kind, d.metadata.name), undefined);
    }
  }
});

test('one the store holds from before (an older version accepted it) runs nowhere: the gateway starts and serves; the admin API deletes it', async () => {
  assert.equal((await call(g.gw.adminUrl, 'POST', '/v1/apply', [extension])).status, 200);
  const [stale] = unbuildable;
  await g.gw.apim.db.manifests.apply({ kind: stale.kind, name: stale.metadata.name, apiVersion: V, spec: stale.spec });
  await g.restart();
  const ready = await call(g.gw.adminUrl, 'GET', '/readyz');
  assert.equal(ready.body.policiesBuilt, true, JSON.stringify(ready.body));
  assert.equal(await g.chat('anyone'), 503, 'served (the model server is down), not refused as 500 extension_failed');
  assert.equal((await call(g.gw.adminUrl, 'DELETE', `/v1/manifests/${stale.kind}/${stale.metadata.name}`)).status, 200);
});
