// What apply stored, through a running gateway: shown as manifests; deleted, with the enforcement stopping with the
// policy, a delete that would leave the policies unbuildable refused, and what --config files declare kept.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { manifestOf } from '../src/config/manifest.js';
import { call, until } from './helpers/apim-admin.js';
import { APIM_V1 as V, contract, useContractGateway } from './helpers/contract-gateway.js';

const g = useContractGateway('manifests', [manifestOf('SpikeArrest', 'filed', { rate: '100ps' }, 'test')]);
const chat = g.chat;
const [EXT, CONTRACT, TEMPLATE] = contract('^u[0-9]+$');

const enforced = () => until(() => chat('anyone'), (s) => s === 400, 5000, 'the contract enforced');

test('what apply stored is shown as manifests, one or a page of one kind at a time', async () => {
  const product = { apiVersion: V, kind: 'APIProduct', metadata: { name: 'gold' }, spec: { displayName: 'Gold', description: 'the best', enforcementRefs: [{ name: 'ext' }] } };
  const sets = ['a', 'b', 'c'].map((n) => ({ apiVersion: V, kind: 'APIOperationSet', metadata: { name: `set-${n}` }, spec: { apiProductRefs: [{ name: 'gold' }] } }));
  assert.equal((await call(g.gw.adminUrl, 'POST', '/v1/apply', [EXT, CONTRACT, TEMPLATE, product, ...sets])).status, 200);

  const one = await call(g.gw.adminUrl, 'GET', '/v1/manifests/OASValidation/contract');
  assert.equal(one.status, 200);
  const { status, ...doc } = one.body;
  assert.deepEqual(doc, CONTRACT);
  assert.equal(status.owner, 'api');
  assert.ok(status.createdAt > 0 && status.lastModifiedAt >= status.createdAt);

  const gold = await call(g.gw.adminUrl, 'GET', '/v1/manifests/APIProduct/gold');
  assert.deepEqual(gold.body.spec, { displayName: 'Gold', description: 'the best', approvalType: 'auto', enforcementRefs: [{ name: 'ext' }] });
  // What GET shows, applied again as it is, changes nothing.
  const again = await call(g.gw.adminUrl, 'POST', '/v1/apply', [gold.body, one.body]);
  assert.equal(again.status, 200, JSON.stringify(again.body));
  assert.deepEqual(again.body.results.map((r: { outcome: string }) => r.outcome), ['unchanged', 'unchanged']);

  const first = await call(g.gw.adminUrl, 'GET', '/v1/manifests/APIOperationSet?pageSize=2');
  assert.deepEqual(first.body.items.map((d: { metadata: { name: string } }) => d.metadata.name), ['set-a', 'set-b']);
  const rest = await call(g.gw.adminUrl, 'GET', `/v1/manifests/APIOperationSet?pageSize=2&pageToken=${encodeURIComponent(first.body.nextPageToken)}`);
  assert.deepEqual(rest.body.items.map((d: { metadata: { name: string } }) => d.metadata.name), ['set-c']);
  assert.equal(rest.body.nextPageToken, undefined);
  assert.deepEqual((await call(g.gw.adminUrl, 'GET', '/v1/manifests/ApimTemplate')).body.items.map((d: { kind: string }) => d.kind), ['ApimTemplate']);

  assert.equal((await call(g.gw.adminUrl, 'GET', '/v1/manifests/SpikeArrest/none')).status, 404);
  assert.equal((await call(g.gw.adminUrl, 'GET', '/v1/manifests/InferencePool')).status, 400);

  assert.equal((await call(g.gw.adminUrl, 'POST', '/v1/delete', [product, ...sets])).status, 200);
  assert.deepEqual((await call(g.gw.adminUrl, 'GET', '/v1/manifests/APIOperationSet')).body.items, []);
});

test('inline key material is shown redacted, and the placeholder is refused when applied back', async () => {
  const admin = g.gw.adminUrl;
  const secret = 's3cr3t-'.repeat(8);
  const signer = { apiVersion: V, kind: 'GenerateJWT', metadata: { name: 'signer' }, spec: { algorithm: 'HS256', secretKey: { value: secret } } };
  const verifier = { apiVersion: V, kind: 'VerifyJWT', metadata: { name: 'verifier' }, spec: { algorithms: ['HS256'], secretKey: { env: 'JWT_SECRET' } } };
  // A policy no template lists is built all the same, so the variable it names must be set.
  const saved = process.env.JWT_SECRET;
  process.env.JWT_SECRET = secret;
  try {
    assert.equal((await call(admin, 'POST', '/v1/apply', [signer, verifier])).status, 200);
    const shown = await call(admin, 'GET', '/v1/manifests/GenerateJWT/signer');
    assert.deepEqual(shown.body.spec.secretKey, { value: '(redacted)' });
    assert.ok(!JSON.stringify((await call(admin, 'GET', '/v1/manifests/GenerateJWT')).body).includes(secret));
    assert.deepEqual((await call(admin, 'GET', '/v1/manifests/VerifyJWT/verifier')).body.spec.secretKey, { env: 'JWT_SECRET' }, 'a reference is not a secret');
    const back = await call(admin, 'POST', '/v1/apply', [shown.body]);
    assert.equal(back.status, 400);
    assert.equal(back.body.error.details[0].path, '[0].spec.secretKey.value');
    assert.deepEqual((await g.gw.apim.db.manifests.get('GenerateJWT', 'signer')).spec.secretKey, { value: secret }, 'the key stays');
    assert.equal((await call(admin, 'POST', '/v1/delete', [signer, verifier])).status, 200);
  } finally {
    if (saved === undefined) delete process.env.JWT_SECRET;
    else process.env.JWT_SECRET = saved;
  }
});

test('a credential header sent to an embeddings endpoint is shown redacted; the others, and {env} references, are shown', async () => {
  const admin = g.gw.adminUrl;
  const lookup = {
    apiVersion: V,
    kind: 'SemanticCacheLookup',
    metadata: { name: 'faq' },
    // These headers are sent as written (never rendered): braces in one are part of the secret.
    spec: { embeddings: { url: 'http://127.0.0.1:9/v1/embeddings', model: 'e5', headers: { Authorization: 'Bearer sk-inline-123', 'x-api-key': { env: 'EMBEDDINGS_KEY' }, 'x-trace': 'on', 'x-model-token': 'sk_{live}_9f8e' } } },
  };
  const saved = process.env.EMBEDDINGS_KEY;
  process.env.EMBEDDINGS_KEY = 'from-the-environment';
  try {
    assert.equal((await call(admin, 'POST', '/v1/apply', [lookup])).status, 200);
    const shown = await call(admin, 'GET', '/v1/manifests/SemanticCacheLookup/faq');
    // Before: the inline bearer token was shown as it was stored.
    assert.deepEqual(shown.body.spec.embeddings.headers, { Authorization: '(redacted)', 'x-api-key': { env: 'EMBEDDINGS_KEY' }, 'x-trace': 'on', 'x-model-token': '(redacted)' });
    const back = await call(admin, 'POST', '/v1/apply', [shown.body]);
    assert.equal(back.status, 400);
    assert.equal(back.body.error.details[0].path, '[0].spec.embeddings.headers.Authorization');
    assert.equal((await call(admin, 'POST', '/v1/delete', [lookup])).status, 200);
  } finally {
    if (saved === undefined) delete process.env.EMBEDDINGS_KEY;
    else process.env.EMBEDDINGS_KEY = saved;
  }
});

test('a callout\'s and an AssignMessage\'s literal credential headers are shown redacted; templates and {env} are shown', async () => {
  const admin = g.gw.adminUrl;
  const callout = {
    apiVersion: V,
    kind: 'ServiceCallout',
    metadata: { name: 'crm' },
    spec: {
      request: { url: 'https://crm.example.com/users/{client_id}', headers: { authorization: 'Bearer sk-live-CALLOUT', 'x-api-key': { env: 'CRM_KEY' }, 'x-token': 'Bearer {kvm.crm}', accept: 'application/json' } },
    },
  };
  const assign = {
    apiVersion: V,
    kind: 'AssignMessage',
    metadata: { name: 'upstream-cred' },
    // Braces around what is no variable name are sent as written: a literal (and secret) like any other.
    spec: { set: { headers: [{ name: 'x-trace', value: 'on' }, { name: 'Authorization', value: 'Bearer sk-UPSTREAM' }, { name: 'x-api-key', value: '{kvm.model_key}' }, { name: 'x-model-token', value: 'sk-9f8e{7d6c}5b4a' }] } },
  };
  const saved = process.env.CRM_KEY;
  process.env.CRM_KEY = 'from-the-environment';
  try {
    assert.equal((await call(admin, 'POST', '/v1/apply', [callout, assign])).status, 200);
    const shownCallout = await call(admin, 'GET', '/v1/manifests/ServiceCallout/crm');
    assert.deepEqual(shownCallout.body.spec.request.headers, { authorization: '(redacted)', 'x-api-key': { env: 'CRM_KEY' }, 'x-token': 'Bearer {kvm.crm}', accept: 'application/json' });
    const shownAssign = await call(admin, 'GET', '/v1/manifests/AssignMessage/upstream-cred');
    assert.deepEqual(shownAssign.body.spec.set.headers, [
      { name: 'x-trace', value: 'on' },
      { name: 'Authorization', value: '(redacted)' },
      { name: 'x-api-key', value: '{kvm.model_key}' },
      { name: 'x-model-token', value: '(redacted)' },
    ]);
    const back = await call(admin, 'POST', '/v1/apply', [shownAssign.body]);
    assert.equal(back.status, 400);
    assert.equal(back.body.error.details[0].path, '[0].spec.set.headers.1.value');
    assert.deepEqual((await g.gw.apim.db.manifests.get('AssignMessage', 'upstream-cred')).spec.set, assign.spec.set, 'what is stored is the secret');
    assert.equal((await call(admin, 'POST', '/v1/delete', [callout, assign])).status, 200);
  } finally {
    if (saved === undefined) delete process.env.CRM_KEY;
    else process.env.CRM_KEY = saved;
  }
});

test('deleting a policy a template still names is refused (400, dry run too); deleting both stops the enforcement', async () => {
  assert.equal((await call(g.gw.adminUrl, 'POST', '/v1/apply', [EXT, CONTRACT, TEMPLATE])).status, 200);
  await enforced();

  for (const path of ['/v1/delete', '/v1/delete?dryRun=true']) {
    const r = await call(g.gw.adminUrl, 'POST', path, [CONTRACT]);
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(r.body.error.message, /would be broken without this object \(the details say how\); nothing was deleted/);
    assert.ok((r.body.error.details as { message: string }[]).some((d) => d.message.includes('contract')), JSON.stringify(r.body.error.details));
  }
  const single = await call(g.gw.adminUrl, 'DELETE', '/v1/manifests/OASValidation/contract');
  assert.equal(single.status, 400, JSON.stringify(single.body));
  assert.ok(await g.gw.apim.db.manifests.find('OASValidation', 'contract'), 'nothing was deleted');

  const dry = await call(g.gw.adminUrl, 'DELETE', '/v1/manifests/ApimTemplate/checks?dryRun=true');
  assert.deepEqual(dry.body, { dryRun: true, kind: 'ApimTemplate', name: 'checks', outcome: 'deleted' });
  assert.ok(await g.gw.apim.db.manifests.find('ApimTemplate', 'checks'), 'a dry run deletes nothing');
  assert.equal(await chat('anyone'), 400);

  // Only kind and metadata.name are read: the documents as applied will do, or just the names.
  const both = await call(g.gw.adminUrl, 'POST', '/v1/delete', [TEMPLATE, { kind: 'OASValidation', metadata: { name: 'contract' } }]);
  assert.equal(both.status, 200, JSON.stringify(both.body));
  assert.deepEqual(both.body.results, [
    { kind: 'ApimTemplate', name: 'checks', outcome: 'deleted' },
    { kind: 'OASValidation', name: 'contract', outcome: 'deleted' },
  ]);
  await until(() => chat('anyone'), (s) => s === 503, 5000, 'the contract no longer enforced');
  assert.equal((await call(g.gw.adminUrl, 'DELETE', '/v1/manifests/OASValidation/contract')).status, 404);
});

test('the APIMExtensionPolicy is deleted only with force: without it no request is checked at all', async () => {
  const admin = g.gw.adminUrl;
  const single = await call(admin, 'DELETE', '/v1/manifests/APIMExtensionPolicy/ext');
  assert.equal(single.status, 400, JSON.stringify(single.body));
  assert.match(single.body.error.message, /turns API management off/);
  assert.equal((await call(admin, 'POST', '/v1/delete?dryRun=true', [EXT])).status, 400);
  assert.ok(await g.gw.apim.db.manifests.find('APIMExtensionPolicy', 'ext'));
  // One that is not there, named first, does not wave the other through.
  const ghost = { ...EXT, metadata: { name: 'ghost' } };
  const both = await call(admin, 'POST', '/v1/delete', [ghost, EXT]);
  assert.equal(both.status, 400, JSON.stringify(both.body));
  assert.deepEqual(both.body.error.details.map((d: { path: string }) => d.path), ['[1]']);
  const forced = await call(admin, 'DELETE', '/v1/manifests/APIMExtensionPolicy/ext?force=true');
  assert.equal(forced.status, 200, JSON.stringify(forced.body));
  assert.equal(await g.gw.apim.db.manifests.find('APIMExtensionPolicy', 'ext'), undefined);
  assert.equal((await call(admin, 'POST', '/v1/apply', [EXT])).status, 200);
});

test('what the admin API cannot delete: gateway kinds and unknown kinds (400), objects --config files declare (409)', async () => {
  const pool = await call(g.gw.adminUrl, 'DELETE', '/v1/manifests/InferencePool/pool');
  assert.equal(pool.status, 400);
  assert.match(pool.body.error.details[0].message, /--config files/);
  const unknown = await call(g.gw.adminUrl, 'DELETE', '/v1/manifests/Nonsense/x');
  assert.equal(unknown.status, 400);
  assert.match(unknown.body.error.details[0].message, /unknown kind "Nonsense"/);
  const filed = await call(g.gw.adminUrl, 'DELETE', '/v1/manifests/SpikeArrest/filed');
  assert.equal(filed.status, 409);
  assert.equal(filed.body.error.code, 'file_owned');
  // A YAML body's documents are numbered as serve numbers a file's, empty ones too: the conflict is document 1.
  const yaml = `---\n---\napiVersion: apim.googleapis.com/v1\nkind: SpikeArrest\nmetadata: { name: filed }\nspec: { rate: 5ps }\n`;
  const applied = await fetch(`${g.gw.adminUrl}/v1/apply`, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: yaml });
  assert.equal(applied.status, 409);
  assert.deepEqual(((await applied.json()) as { error: { details: { path: string }[] } }).error.details.map((d) => d.path), ['[1]']);
  const empty = await call(g.gw.adminUrl, 'POST', '/v1/delete', []);
  assert.equal(empty.status, 400);
  const nameless = await call(g.gw.adminUrl, 'POST', '/v1/delete', [{ kind: 'SpikeArrest', metadata: {} }]);
  assert.equal(nameless.status, 400);
  assert.deepEqual(nameless.body.error.details, [{ path: '[0].metadata.name', message: 'a name is required' }]);
  // PostgreSQL cannot be asked about such a name (an error, a 500): a 400 before the store is.
  const nul = await call(g.gw.adminUrl, 'POST', '/v1/delete', [{ kind: 'SpikeArrest', metadata: { name: 'a\u0000b' } }]);
  assert.equal(nul.status, 400);
  assert.equal(nul.body.error.details[0].path, '[0].metadata.name');
  assert.equal((await call(g.gw.adminUrl, 'POST', '/v1/delete', 'kind: [unclosed')).status, 400);
});

test('too many documents (200,000 in a JSON array) or a YAML body over 1 MiB: 400 before any document is read', async () => {
  const many = `[${Array(200_000).fill('{}').join(',')}]`;
  for (const path of ['/v1/apply', '/v1/delete']) {
    const r = await fetch(`${g.gw.adminUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: many });
    const body = (await r.json()) as { error: { details: { message: string }[] } };
    assert.equal(r.status, 400);
    assert.match(body.error.details[0].message, /at most 10000 documents per request, not 200000/);
  }
  const deep = `[{"apiVersion":"${V}","kind":"SpikeArrest","metadata":{"name":"deep"},"spec":{"x":${'['.repeat(20_000)}${']'.repeat(20_000)}}}]`;
  const nested = await fetch(`${g.gw.adminUrl}/v1/apply`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: deep });
  assert.equal(nested.status, 400);
  assert.match(((await nested.json()) as { error: { details: { message: string }[] } }).error.details[0].message, /JSON: nests arrays and objects more than 512 levels deep/);
  const broken = `[${Array(400_000).fill('{}').join(',')},]`;
  const r1 = await fetch(`${g.gw.adminUrl}/v1/apply`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: broken });
  assert.equal(r1.status, 400);
  assert.match(((await r1.json()) as { error: { details: { message: string }[] } }).error.details[0].message, /^JSON: /, 'a JSON syntax error, not the YAML size limit');
  const yaml = Array.from({ length: 12_000 }, (_, i) => `apiVersion: ${V}\nkind: SpikeArrest\nmetadata: { name: s${i} }\nspec: { rate: 100ps }\n`).join('---\n');
  const r = await fetch(`${g.gw.adminUrl}/v1/apply`, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: yaml });
  assert.equal(r.status, 400);
  assert.match(((await r.json()) as { error: { details: { message: string }[] } }).error.details[0].message, /a YAML body may hold at most 1048576 bytes; send JSON/);
});

test('a key-value map is deleted with its entries: made again under its name, it starts empty', async () => {
  assert.equal((await call(g.gw.adminUrl, 'POST', '/v1/keyvaluemaps', { name: 'limits', encrypted: false })).status, 201);
  assert.equal((await call(g.gw.adminUrl, 'POST', '/v1/keyvaluemaps/limits/entries', { name: 'tier', value: 'gold' })).status, 201);
  const r = await call(g.gw.adminUrl, 'DELETE', '/v1/manifests/KeyValueMap/limits');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal((await call(g.gw.adminUrl, 'GET', '/v1/keyvaluemaps/limits')).status, 404);
  assert.equal((await call(g.gw.adminUrl, 'POST', '/v1/keyvaluemaps', { name: 'limits', encrypted: false })).status, 201);
  assert.deepEqual((await call(g.gw.adminUrl, 'GET', '/v1/keyvaluemaps/limits/entries')).body.items, []);
  // Entries whose map is gone (removed from --config files, say): no map to delete (404), and they stay.
  await g.gw.apim.db.kvm.put({ scope: 'environment', mapName: 'orphan', key: 'k', value: 'v' });
  assert.equal((await call(g.gw.adminUrl, 'DELETE', '/v1/manifests/KeyValueMap/orphan')).status, 404);
  assert.equal((await g.gw.apim.db.kvm.listAll()).filter((e) => e.mapName === 'orphan').length, 1);
});

test('after the deletes the gateway restarts on what the store holds', async () => {
  await g.restart();
  assert.equal(await chat('anyone'), 503);
  const audit = await call(g.gw.adminUrl, 'GET', '/v1/audit?resourceType=manifest');
  assert.ok((audit.body.items as { action: string; resourceName: string }[]).some((e) => e.action === 'delete' && e.resourceName === 'OASValidation/contract'), JSON.stringify(audit.body.items));
});

const DATABASE_URL = process.env.DATABASE_URL;

describe('on PostgreSQL', { skip: DATABASE_URL ? false : 'DATABASE_URL is not set' }, () => {
  const pg = useContractGateway('manifests-pg', [], DATABASE_URL);
  const spike = (name: string) => ({ apiVersion: V, kind: 'SpikeArrest', metadata: { name }, spec: { rate: '100ps' } });
  const template = (name: string, policy: string) => ({ apiVersion: V, kind: 'ApimTemplate', metadata: { name }, spec: { templates: [{ policies: [{ kind: 'SpikeArrest', name: policy }] }] } });

  test('an apply naming a policy and the delete of that policy, at once, do not both commit: the store always builds', async () => {
    const admin = pg.gw.adminUrl;
    assert.equal((await call(admin, 'POST', '/v1/apply', [EXT])).status, 200);
    for (let i = 0; i < 20; i++) {
      assert.equal((await call(admin, 'POST', '/v1/apply', [spike(`p${i}`)])).status, 200);
      const [applied, deleted] = await Promise.all([call(admin, 'POST', '/v1/apply', [template(`t${i}`, `p${i}`)]), call(admin, 'DELETE', `/v1/manifests/SpikeArrest/p${i}`)]);
      assert.ok(applied.status !== 200 || deleted.status !== 200, `round ${i}: both committed`);
      assert.equal(applied.status + deleted.status, 600, `round ${i}: one commits, the other is refused (400): ${JSON.stringify([applied.body, deleted.body])}`);
    }
    await pg.restart();
    assert.equal((await call(pg.gw.adminUrl, 'GET', '/readyz')).body.policiesBuilt, true);
  });
});
