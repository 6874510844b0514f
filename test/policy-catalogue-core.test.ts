// The core policy catalogue end to end through a real gateway: CORS preflights, AccessControl behind a trusted
// proxy and ahead of the policies listed before it, AssignMessage on request and answer, OASValidation, a KVM from
// the admin API read in a flow, a template with a CEL condition, and governance (apply refuses a denied policy; a
// rule change reports violations).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { request } from 'undici';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import type { Manifest } from '../src/config/manifest.js';
import { silentLogger } from '../src/lib/logger.js';
import { call, codeOf, createApp, until, untilKeyKnown, type Answer, type IssuedApp } from './helpers/apim-admin.js';
import { manifest } from './helpers/manifests.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const ORIGIN = 'https://chat.example.com';

const CHAT_API = {
  openapi: '3.0.3',
  info: { title: 'chat', version: '1' },
  paths: {
    '/v1/chat/completions': {
      post: {
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { type: 'object', required: ['model', 'messages'], properties: { max_tokens: { type: 'integer', maximum: 512 } } } } },
        },
      },
    },
  },
};

function catalogue(stubUrl: string): Manifest[] {
  return [
    manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate' } }),
    manifest('InferencePool', 'stub', { endpoints: [stubUrl] }),
    manifest('InferenceModel', 'echo', { modelName: 'echo', poolRef: { name: 'stub' } }),
    manifest('APIProduct', 'gold', { displayName: 'Gold' }),
    manifest('APIOperationSet', 'gold-ops', { apiProductRefs: [{ name: 'gold' }], llmOperations: { models: ['echo'] } }),
    manifest('CORS', 'web', { allowOrigins: [ORIGIN], exposeHeaders: ['x-request-id'] }),
    manifest('AccessControl', 'no-abusers', { rules: [{ action: 'DENY', sourceAddresses: ['198.51.100.0/24', '2001:db8:bad::/48'] }], trustedProxies: ['127.0.0.1/32'] }),
    manifest('OASValidation', 'chat-contract', { openApi: CHAT_API }),
    manifest('KeyValueMapOperations', 'tier-of-app', { mapIdentifier: 'tiers', get: [{ assignTo: 'kvm.tier', key: '{developer.app.name}', defaultValue: 'free' }] }),
    manifest('AssignMessage', 'tag-request', {
      set: {
        headers: [{ name: 'x-tenant', value: '{developer.app.name}' }, { name: 'x-tier', value: '{kvm.tier}' }],
        queryParams: [{ name: 'api-version', value: '2024-10-01' }],
        jsonFields: [{ path: 'metadata.app', value: '{developer.app.name}' }],
      },
    }),
    manifest('AssignMessage', 'tag-answer', { assignTo: 'response', set: { headers: [{ name: 'x-served-by', value: 'tollgate' }], jsonFields: [{ path: 'tollgate.model', value: '{model}' }] } }),
    manifest('SpikeArrest', 'free-tier-spike', { rate: '1pm' }),
    manifest('OAuthV2', 'token', { operation: 'GenerateAccessToken' }),
    // Listed last, AccessControl still runs first (its README): a denied address never reaches the others.
    manifest('ApimTemplate', 'edge', { templates: [{ policies: [{ kind: 'CORS', name: 'web' }, { kind: 'OAuthV2', name: 'token' }, { kind: 'AccessControl', name: 'no-abusers' }] }] }),
    manifest('ApimTemplate', 'shaping', {
      templates: [
        { condition: "request.path == '/v1/chat/completions'", policies: [{ kind: 'OASValidation', name: 'chat-contract' }] },
        { policies: [{ kind: 'KeyValueMapOperations', name: 'tier-of-app' }, { kind: 'AssignMessage', name: 'tag-request' }, { kind: 'AssignMessage', name: 'tag-answer' }] },
        { condition: "'x-free' in request.headers && model == 'echo'", policies: [{ kind: 'SpikeArrest', name: 'free-tier-spike' }] },
      ],
    }),
  ];
}

let stub: Stub;
let gw: Gateway;
let app: IssuedApp;
const previousKey = process.env.TOLLGATE_KVM_KEY;

function chat(headers: Record<string, string> = {}, body: Record<string, unknown> = {}): Promise<Answer> {
  return call(gw.url, 'POST', '/v1/chat/completions', { model: 'echo', messages: [{ role: 'user', content: 'hi' }], ...body }, { 'x-api-key': app.key, ...headers });
}

before(async () => {
  process.env.TOLLGATE_KVM_KEY = randomBytes(32).toString('hex');
  stub = await startStub();
  gw = await startGateway({ configPaths: [], manifests: catalogue(stub.url), ...LOOPBACK, logger: silentLogger });
  app = await createApp(gw.adminUrl, ['gold'], 'catalogue');
  await untilKeyKnown(gw.url, app.key);
});

after(async () => {
  await gw?.close();
  await stub?.close();
  if (previousKey === undefined) delete process.env.TOLLGATE_KVM_KEY;
  else process.env.TOLLGATE_KVM_KEY = previousKey;
});

describe('CORS', () => {
  test('a preflight is answered before credentials, on an OpenAI path', async () => {
    const r = await call(gw.url, 'OPTIONS', '/v1/chat/completions', undefined, { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, x-api-key' });
    assert.equal(r.status, 204);
    assert.equal(r.headers['access-control-allow-origin'], ORIGIN);
    assert.match(String(r.headers['access-control-allow-methods']), /POST/);
    assert.match(String(r.headers['access-control-allow-headers']), /x-api-key/);
    assert.equal(r.headers['access-control-max-age'], '1800');
    assert.equal(stub.requests.length, 0, 'the model server never saw it');
  });

  test('a preflight from another origin is refused without CORS headers', async () => {
    const r = await call(gw.url, 'OPTIONS', '/v1/chat/completions', undefined, { origin: 'https://evil.example', 'access-control-request-method': 'POST' });
    assert.equal(r.status, 403);
    assert.equal(codeOf(r), 'steps.cors.OriginNotAllowed');
    assert.equal(r.headers['access-control-allow-origin'], undefined);
  });

  test('actual requests from the origin get the allow headers, faults included', async () => {
    const ok = await chat({ origin: ORIGIN });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.headers['access-control-allow-origin'], ORIGIN);
    assert.equal(ok.headers['access-control-expose-headers'], 'x-request-id');
    const refused = await call(gw.url, 'POST', '/v1/chat/completions', { model: 'echo', messages: [{ role: 'user', content: 'hi' }] }, { origin: ORIGIN });
    assert.equal(refused.status, 401);
    assert.equal(refused.headers['access-control-allow-origin'], ORIGIN, 'so the browser can read the fault');
  });
});

describe('AccessControl', () => {
  test('a denied client behind the trusted proxy is refused by its X-Forwarded-For address', async () => {
    const r = await chat({ 'x-forwarded-for': '198.51.100.23' });
    assert.equal(r.status, 403);
    assert.equal(codeOf(r), 'accesscontrol.IPDeniedAccess');
    assert.match(r.body.error.message, /198\.51\.100\.23/);
    assert.equal((await chat({ 'x-forwarded-for': '2001:db8:bad::1' })).status, 403);
  });

  test('it runs before the policies listed ahead of it: no token endpoint, no preflight for a denied client', async () => {
    const tokens = async () => Number((await sql<{ n: number }>`select count(*) as n from oauth_access_tokens`.execute(gw.apim.db.kysely)).rows[0].n);
    const token = async (secret: string, from: Record<string, string>) => {
      const headers = { 'content-type': 'application/x-www-form-urlencoded', ...from };
      const res = await request(`${gw.url}/oauth/token`, { method: 'POST', headers, body: `grant_type=client_credentials&client_id=${app.key}&client_secret=${secret}` });
      return { status: res.statusCode, headers: res.headers, body: await res.body.json() } as Answer;
    };
    const denied = { 'x-forwarded-for': '198.51.100.23' };
    const before = await tokens();
    for (const secret of ['wrong', app.secret]) {
      const r = await token(secret, denied);
      assert.equal(r.status, 403, JSON.stringify(r.body));
      assert.equal(codeOf(r), 'accesscontrol.IPDeniedAccess');
    }
    assert.equal(await tokens(), before, 'no token stored for a denied client');
    assert.equal((await token(app.secret, {})).status, 200, 'an allowed client gets one');
    const preflight = await call(gw.url, 'OPTIONS', '/v1/chat/completions', undefined, { origin: ORIGIN, 'access-control-request-method': 'POST', 'x-forwarded-for': '198.51.100.23' });
    assert.equal(preflight.status, 403);
    assert.equal(codeOf(preflight), 'accesscontrol.IPDeniedAccess');
    assert.equal(preflight.headers['access-control-allow-origin'], undefined);
  });

  test('a forged left-most entry does not hide the address the proxy saw, nor does it deny an honest client', async () => {
    assert.equal((await chat({ 'x-forwarded-for': '203.0.113.9, 198.51.100.23' })).status, 403);
    assert.equal((await chat({ 'x-forwarded-for': '198.51.100.23, 203.0.113.9' })).status, 200);
    assert.equal((await chat()).status, 200);
  });
});

describe('AssignMessage', () => {
  test('on the request: headers, query and JSON fields from variables reach the model server', async () => {
    const r = await chat();
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const seen = stub.requests.at(-1)!;
    assert.equal(seen.req.headers['x-tenant'], app.app);
    assert.equal(seen.req.headers['x-tier'], 'free');
    assert.equal(seen.req.url, '/v1/chat/completions?api-version=2024-10-01');
    assert.deepEqual(seen.body.metadata, { app: app.app });
  });

  test('on the answer: a header and a JSON field', async () => {
    const r = await chat();
    assert.equal(r.headers['x-served-by'], 'tollgate');
    assert.deepEqual(r.body.tollgate, { model: 'echo' });
    assert.equal(r.body.echo.model, 'echo');
  });
});

test('OASValidation refuses a request against the document, naming the field', async () => {
  const r = await chat({}, { max_tokens: 4096 });
  assert.equal(r.status, 400);
  assert.equal(codeOf(r), 'steps.oasvalidation.Failed');
  assert.match(r.body.error.message, /\/max_tokens: must be <= 512/);
  assert.equal((await chat({}, { max_tokens: 100 })).status, 200);
});

test('a template\'s CEL condition decides whether its policies run', async () => {
  assert.equal((await chat()).status, 200);
  assert.equal((await chat()).status, 200, 'without x-free the spike arrest does not run');
  assert.equal((await chat({ 'x-free': '1' })).status, 200);
  const second = await chat({ 'x-free': '1' });
  assert.equal(second.status, 429);
  assert.equal(codeOf(second), 'policies.ratelimit.SpikeArrestViolation');
});

describe('KeyValueMapOperations', () => {
  test('a map and entry made through the admin API are read in the flow', async () => {
    assert.equal((await call(gw.adminUrl, 'POST', '/v1/keyvaluemaps', { name: 'tiers' })).status, 201);
    assert.equal((await call(gw.adminUrl, 'POST', '/v1/keyvaluemaps', { name: 'tiers' })).status, 409);
    const put = await call(gw.adminUrl, 'PUT', `/v1/keyvaluemaps/tiers/entries/${app.app}`, { value: 'premium' });
    assert.deepEqual(put.body, { name: app.app, value: 'premium' });
    assert.equal((await call(gw.adminUrl, 'GET', `/v1/keyvaluemaps/tiers/entries/${app.app}`)).body.value, 'premium');
    await until(async () => (await chat(), stub.requests.at(-1)!.req.headers['x-tier']), (tier) => tier === 'premium', 5000, 'the flow reads the new entry');
    const listed = await call(gw.adminUrl, 'GET', '/v1/keyvaluemaps/tiers/entries');
    assert.deepEqual(listed.body.items, [{ name: app.app, value: 'premium' }]);
    assert.equal((await call(gw.adminUrl, 'DELETE', `/v1/keyvaluemaps/tiers/entries/${app.app}`)).status, 200);
    await until(async () => (await chat(), stub.requests.at(-1)!.req.headers['x-tier']), (tier) => tier === 'free', 5000, 'the default once the entry is gone');
  });

  test('an encrypted map stores ciphertext, hides values from the API and reads them in the flow', async () => {
    assert.equal((await call(gw.adminUrl, 'POST', '/v1/keyvaluemaps', { name: 'vault', encrypted: true })).status, 201);
    const put = await call(gw.adminUrl, 'PUT', '/v1/keyvaluemaps/vault/entries/token', { value: 's3cret-token' });
    assert.deepEqual(put.body, { name: 'token', encrypted: true });
    const stored = await gw.apim.db.kvm.get('environment', 'vault', 'token');
    assert.equal(stored!.encrypted, true);
    assert.ok(!stored!.value.includes('s3cret-token'));
    assert.deepEqual((await call(gw.adminUrl, 'GET', '/v1/keyvaluemaps')).body.keyValueMaps, [
      { name: 'tiers', encrypted: false },
      { name: 'vault', encrypted: true },
    ]);
    assert.equal((await call(gw.adminUrl, 'GET', '/v1/keyvaluemaps/nope/entries/x')).status, 404);
  });
});

describe('governance through apply', () => {
  const apply = (docs: unknown[]) => call(gw.adminUrl, 'POST', '/v1/apply', docs);
  const V = 'apim.googleapis.com/v1';
  const rule = (denyList: string[]) => ({ apiVersion: V, kind: 'ApimTemplateRule', metadata: { name: 'no-shaping' }, spec: { denyList: denyList.map((kind) => ({ kind })) } });

  test('a rule change is applied and reports what already breaks it; the gateway keeps serving', async () => {
    const r = await apply([rule(['AssignMessage'])]);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.violations, ['ApimTemplate/shaping breaks ApimTemplateRule/no-shaping: AssignMessage is on the denyList']);
    assert.equal((await chat()).status, 200);
  });

  test('apply refuses a template with a denied policy, naming the rule and the policy', async () => {
    const r = await apply([
      { apiVersion: V, kind: 'AssignMessage', metadata: { name: 'sneaky' }, spec: { set: { headers: [{ name: 'x-a', value: 'b' }] } } },
      { apiVersion: V, kind: 'ApimTemplate', metadata: { name: 'more-shaping' }, spec: { templates: [{ policies: [{ kind: 'AssignMessage', name: 'sneaky' }] }] } },
    ]);
    assert.equal(r.status, 400);
    assert.deepEqual(r.body.error.details, [{ path: '[1]', message: 'ApimTemplate/more-shaping breaks ApimTemplateRule/no-shaping: AssignMessage is on the denyList' }]);
    assert.equal(await gw.apim.db.manifests.find('ApimTemplate', 'more-shaping'), undefined, 'nothing was applied');
  });

  test('apply refuses a rule naming a policy kind that does not exist, naming the field', async () => {
    const r = await apply([rule(['AssignMessage', 'Javascript'])]);
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.equal(r.body.error.details.length, 1);
    assert.equal(r.body.error.details[0].path, '[0].spec.denyList[1].kind');
    assert.match(r.body.error.details[0].message, /^unknown policy kind "Javascript" \(known: [^)]*JavaScript/);
    assert.deepEqual((await gw.apim.db.manifests.find('ApimTemplateRule', 'no-shaping'))?.spec, { denyList: [{ kind: 'AssignMessage' }] }, 'nothing was applied');
  });

  test('relaxing the rule clears the report', async () => {
    const r = await apply([rule([])]);
    assert.equal(r.status, 200);
    assert.equal(r.body.violations, undefined);
  });
});

test('without TOLLGATE_KVM_KEY an encrypted map is refused', async () => {
  delete process.env.TOLLGATE_KVM_KEY;
  const plain = await startGateway({ configPaths: [], manifests: [], ...LOOPBACK, logger: silentLogger });
  try {
    const r = await call(plain.adminUrl, 'POST', '/v1/keyvaluemaps', { name: 'vault', encrypted: true });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /TOLLGATE_KVM_KEY/);
  } finally {
    await plain.close();
  }
});
