// Security and mediation policies end to end, each on its own gateway: OAuth client credentials (issue, use,
// quotas, expiry, revocation), VerifyJWT (JWKS on loopback, HS secret) with claims as identifiers, GenerateJWT and
// TokenInjection headers seen by the model server, ServiceCallout (and its SSRF guard), JavaScript (a header
// change, a runaway script), and no secret in any log line.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { Readable } from 'node:stream';
import { SignJWT, exportJWK, jwtVerify } from 'jose';
import { pino } from 'pino';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { sandboxPool } from '../src/policy/policies/javascript/sandbox-pool.js';
import type { Manifest } from '../src/config/manifest.js';
import { call, codeOf, createApp, until, type Answer, type IssuedApp } from './helpers/apim-admin.js';
import { manifest, poolAndModel } from './helpers/manifests.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const HS_SECRET = 'an-hs256-secret-for-the-e2e-test-0123456789';
const SIGNING_SECRET = 'the-gateway-signing-secret-for-upstreams-42';
const UPSTREAM_SECRET = 'upstream-client-secret-xyz';
process.env.TOLLGATE_E2E_HS_SECRET = HS_SECRET;
process.env.TOLLGATE_E2E_SIGNING_SECRET = SIGNING_SECRET;
process.env.TOLLGATE_E2E_UPSTREAM_SECRET = UPSTREAM_SECRET;

/** Every log line of every gateway here, and every secret this file used, to prove none reaches the logs. */
const logLines: string[] = [];
const secrets: string[] = [HS_SECRET, SIGNING_SECRET, UPSTREAM_SECRET];
const logger = () => pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });

const idp = generateKeyPairSync('ec', { namedCurve: 'P-256' });

function extension(): Manifest {
  return manifest('APIMExtensionPolicy', 'ext', { targetRef: { name: 'tollgate', kind: 'Gateway' } });
}

/** The listed policies (kind, name, spec) in one template, on a gateway routing model `echo` to the stub. */
function start(stubUrl: string, policies: [kind: string, name: string, spec: unknown][], extra: Manifest[] = []): Promise<Gateway> {
  const manifests = [
    extension(),
    ...poolAndModel([stubUrl], 'echo'),
    ...extra,
    ...policies.map(([kind, name, spec]) => manifest(kind, name, spec)),
    manifest('ApimTemplate', 'template', { templates: [{ policies: policies.map(([kind, name]) => ({ kind, name })) }] }),
  ];
  return startGateway({ configPaths: [], manifests, ...LOOPBACK, logger: logger() });
}

function chat(gw: Gateway, headers: Record<string, string> = {}): Promise<Answer> {
  return call(gw.url, 'POST', '/v1/chat/completions', { model: 'echo', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 5 }, headers);
}

function assertFault(a: Answer, status: number, code: string): void {
  assert.equal(a.status, status, `${code}: ${JSON.stringify(a.body)}`);
  assert.equal(codeOf(a), code);
}

/** A small JSON server on loopback; `handle` answers each request. */
async function jsonServer(handle: (path: string, body: string) => { status?: number; body: unknown }): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const a = handle(req.url!, body);
      res.writeHead(a.status ?? 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

let stub: Stub;
const servers: Server[] = [];
const gateways: Gateway[] = [];
let jwksUrl: string;
let upstreamTokenUrl: string;
let calloutUrl: string;
let upstreamTokens = 0;

before(async () => {
  stub = await startStub();
  const jwk = { ...(await exportJWK(idp.publicKey)), kid: 'idp-1', alg: 'ES256', use: 'sig' };
  const jwks = await jsonServer(() => ({ body: { keys: [jwk] } }));
  const tokens = await jsonServer(() => ({ body: { access_token: `upstream-token-${++upstreamTokens}`, token_type: 'Bearer', expires_in: 3600 } }));
  const callout = await jsonServer((path) => ({ body: { user: path.split('/').pop(), tier: path.endsWith('/alice') ? 'gold' : 'bronze' } }));
  servers.push(jwks.server, tokens.server, callout.server);
  jwksUrl = `${jwks.url}/.well-known/jwks.json`;
  upstreamTokenUrl = `${tokens.url}/oauth/token`;
  calloutUrl = callout.url;
});

after(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await stub?.close();
  for (const s of servers) s.close();
});

async function gateway(policies: [string, string, unknown][], extra: Manifest[] = []): Promise<Gateway> {
  const gw = await start(stub.url, policies, extra);
  gateways.push(gw);
  return gw;
}

/** The stub's record of the last request it got. */
const lastUpstream = () => stub.requests.at(-1)!.req.headers;

describe('OAuthV2 client credentials', () => {
  let gw: Gateway;
  let app: IssuedApp;

  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const basic = (a: IssuedApp) => `Basic ${Buffer.from(`${a.key}:${a.secret}`).toString('base64')}`;

  async function tokenCall(body: string, headers: Record<string, string> = form, path = '/oauth/token'): Promise<Answer> {
    const { request } = await import('undici');
    const res = await request(`${gw.url}${path}`, { method: 'POST', headers, body });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, body: JSON.parse(text) };
  }

  async function issue(a: IssuedApp, extra = '', path?: string): Promise<string> {
    const r = await tokenCall(`grant_type=client_credentials&client_id=${a.key}&client_secret=${a.secret}${extra}`, form, path);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    secrets.push(r.body.access_token);
    return r.body.access_token;
  }

  /** A fresh app whose key the data plane knows (the token endpoint accepts its credentials). */
  async function freshApp(): Promise<IssuedApp> {
    const a = await createApp(gw.adminUrl, ['gold'], 'oauth');
    secrets.push(a.key, a.secret);
    await until(() => tokenCall(`grant_type=client_credentials&client_id=${a.key}&client_secret=${a.secret}`), (r) => r.status === 200, 5000, 'key known');
    return a;
  }

  before(async () => {
    gw = await gateway(
      [
        ['OAuthV2', 'token', { operation: 'GenerateAccessToken' }],
        ['OAuthV2', 'short-token', { operation: 'GenerateAccessToken', tokenPath: '/oauth/short-token', expiresIn: '1s' }],
        ['OAuthV2', 'verify-token', { operation: 'VerifyAccessToken', scope: 'chat' }],
        ['Quota', 'product-quota', { useQuotaConfigInAPIProduct: true }],
      ],
      [
        manifest('APIProduct', 'gold', { displayName: 'Gold', scopes: ['chat', 'embed'], enforcementRefs: [{ name: 'ext' }] }),
        manifest('APIOperationSet', 'gold-ops', { apiProductRefs: [{ name: 'gold' }], quota: { limit: 3, interval: 1, timeUnit: 'minute' }, llmOperations: { models: ['echo'] } }),
      ],
    );
    app = await freshApp();
  });

  test('the token endpoint issues a Bearer token for the app\'s key and secret (form or Basic)', async () => {
    const r = await tokenCall('grant_type=client_credentials&scope=chat', { ...form, authorization: basic(app) });
    assert.equal(r.status, 200);
    assert.match(r.body.access_token, /^tgat_/);
    assert.equal(r.body.token_type, 'Bearer');
    assert.equal(r.body.expires_in, 3600);
    assert.equal(r.body.scope, 'chat');
    assert.equal(r.headers['cache-control'], 'no-store');
    secrets.push(r.body.access_token);
  });

  test('the token calls the model like the key would; the API key itself is not accepted here', async () => {
    const token = await issue(app);
    const r = await chat(gw, { authorization: `Bearer ${token}` });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(lastUpstream().authorization, undefined, 'the client\'s token never goes upstream');
    assertFault(await chat(gw, { 'x-api-key': app.key }), 401, 'oauth.v2.InvalidAccessToken');
  });

  test('token endpoint faults in RFC 6749 §5.2\'s shape: bad client, unsupported grant, scope not offered, a parameter twice', async () => {
    const refusals: [body: string, status: number, error: string][] = [
      [`grant_type=client_credentials&client_id=${app.key}&client_secret=wrong`, 401, 'invalid_client'],
      ['grant_type=password&username=u&password=p', 400, 'unsupported_grant_type'],
      [`grant_type=client_credentials&client_id=${app.key}&client_secret=${app.secret}&scope=admin`, 400, 'invalid_scope'],
      [`grant_type=client_credentials&grant_type=password&client_id=${app.key}&client_secret=${app.secret}`, 400, 'invalid_request'],
    ];
    for (const [body, status, error] of refusals) {
      const r = await tokenCall(body);
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.error, error);
      assert.equal(typeof r.body.error_description, 'string');
      assert.equal(r.headers['cache-control'], 'no-store');
    }
  });

  test('a token request over 16 KiB gets 413 before it is parsed or its client checked, its length declared or not', async () => {
    const { request } = await import('undici');
    const emptyParameters = 'a&'.repeat(32 * 1024);
    for (const body of [emptyParameters, Readable.from([emptyParameters])]) {
      const res = await request(`${gw.url}/oauth/token`, { method: 'POST', headers: form, body });
      const answer = (await res.body.json()) as { error: { code: string } };
      assert.equal(res.statusCode, 413, JSON.stringify(answer));
      assert.equal(answer.error.code, 'body_too_large');
    }
  });

  test('VerifyAccessToken refusals challenge for a Bearer token (RFC 6750 §3)', async () => {
    const r = await chat(gw, { authorization: `Bearer ${await issue(app, '&scope=embed')}` });
    assert.equal(r.status, 403);
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="tollgate", error="insufficient_scope"');
    const unknown = await chat(gw, { authorization: 'Bearer tgat_0000000000000000000000000000000000000000' });
    assert.equal(unknown.headers['www-authenticate'], 'Bearer realm="tollgate", error="invalid_token"');
    assert.equal((await chat(gw, {})).headers['www-authenticate'], 'Bearer realm="tollgate"');
  });

  test('a token without the required scope is refused; an unknown token is invalid', async () => {
    assertFault(await chat(gw, { authorization: `Bearer ${await issue(app, '&scope=embed')}` }), 403, 'oauth.v2.InsufficientScope');
    assertFault(await chat(gw, { authorization: 'Bearer tgat_0000000000000000000000000000000000000000' }), 401, 'keymanagement.service.invalid_access_token');
  });

  test('the product quota counts per app, whichever token the app uses', async () => {
    const a = await freshApp();
    const [t1, t2] = [await issue(a), await issue(a)];
    for (const t of [t1, t2, t1]) assert.equal((await chat(gw, { authorization: `Bearer ${t}` })).status, 200);
    assertFault(await chat(gw, { authorization: `Bearer ${t2}` }), 429, 'policies.ratelimit.QuotaViolation');
  });

  test('a token expires', async () => {
    const token = await issue(app, '', '/oauth/short-token');
    assert.equal((await chat(gw, { authorization: `Bearer ${token}` })).status, 200);
    await new Promise((r) => setTimeout(r, 1100));
    assertFault(await chat(gw, { authorization: `Bearer ${token}` }), 401, 'keymanagement.service.access_token_expired');
  });

  test('a revoked token stops working within about a second; revoking by key revokes all its tokens', async () => {
    const a = await freshApp();
    const token = await issue(a);
    assert.equal((await chat(gw, { authorization: `Bearer ${token}` })).status, 200);
    const revoked = await call(gw.adminUrl, 'POST', '/v1/oauth/revoke', { token });
    assert.deepEqual(revoked.body, { revoked: 1 });
    const started = performance.now();
    await until(() => chat(gw, { authorization: `Bearer ${token}` }), (r) => r.status === 401, 3000, 'revoked token refused');
    assert.ok(performance.now() - started < 1500);
    assert.equal(codeOf(await chat(gw, { authorization: `Bearer ${token}` })), 'keymanagement.service.invalid_access_token');

    const [t1, t2] = [await issue(a), await issue(a)];
    // t1, t2, and the token freshApp's readiness probe was issued.
    assert.deepEqual((await call(gw.adminUrl, 'POST', '/v1/oauth/revoke', { keyId: a.keyId })).body, { revoked: 3 });
    for (const t of [t1, t2]) await until(() => chat(gw, { authorization: `Bearer ${t}` }), (r) => r.status === 401, 3000, 'revoked token refused');
  });
});

describe('credentials read from another header or a query parameter', () => {
  test('the model server gets neither the header nor the query parameter the key came in (nor the JWT)', async () => {
    const products = [
      manifest('APIProduct', 'gold', { displayName: 'Gold' }),
      manifest('APIOperationSet', 'gold-ops', { apiProductRefs: [{ name: 'gold' }], llmOperations: { models: ['echo'] } }),
    ];
    const inHeader = await gateway([['VerifyAPIKey', 'key-in-header', { apiKey: { ref: 'request.header.x-key' } }]], products);
    const inQuery = await gateway([['VerifyAPIKey', 'key-in-query', { apiKey: { ref: 'request.queryparam.apikey' } }]], products);
    const jwt = await gateway([['VerifyJWT', 'id-token', { algorithms: ['HS256'], secretKey: { env: 'TOLLGATE_E2E_HS_SECRET' }, source: { ref: 'request.header.x-id-token' } }]]);
    const a = await createApp(inHeader.adminUrl, ['gold'], 'custom-header');
    const b = await createApp(inQuery.adminUrl, ['gold'], 'custom-query');
    secrets.push(a.key, a.secret, b.key, b.secret);

    await until(() => chat(inHeader, { 'x-key': a.key, 'x-other': 'kept' }), (r) => r.status === 200, 5000, 'key known');
    assert.equal(lastUpstream()['x-key'], undefined);
    assert.equal(lastUpstream()['x-other'], 'kept');

    const body = { model: 'echo', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 5 };
    await until(() => call(inQuery.url, 'POST', `/v1/chat/completions?tenant=t%201&apikey=${b.key}`, body), (r) => r.status === 200, 5000, 'key known');
    assert.equal(stub.requests.at(-1)!.req.url, '/v1/chat/completions?tenant=t+1');

    const token = await new SignJWT({ sub: 'dana' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(HS_SECRET));
    assert.equal((await chat(jwt, { 'x-id-token': token })).status, 200);
    assert.equal(lastUpstream()['x-id-token'], undefined);
  });
});

describe('VerifyJWT and GenerateJWT', () => {
  let jwks: Gateway;
  let hs: Gateway;

  const idpToken = (sub: string, opts: { aud?: string; kid?: string } = {}) =>
    new SignJWT({ tier: 'gold' })
      .setProtectedHeader({ alg: 'ES256', kid: opts.kid ?? 'idp-1' })
      .setIssuer('https://idp.example')
      .setAudience(opts.aud ?? 'tollgate')
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(idp.privateKey);

  before(async () => {
    jwks = await gateway([
      ['VerifyJWT', 'idp', { algorithms: ['ES256'], jwks: { uri: jwksUrl }, issuer: 'https://idp.example', audience: 'tollgate', timeAllowance: '30s' }],
      ['SpikeArrest', 'per-user', { rate: '1pm', identifier: { ref: 'jwt.idp.claim.sub' } }],
      ['GenerateJWT', 'to-upstream', { algorithm: 'HS256', secretKey: { env: 'TOLLGATE_E2E_SIGNING_SECRET' }, issuer: 'tollgate', subject: '{jwt.idp.claim.sub}', additionalClaims: { tier: '{jwt.idp.claim.tier}' } }],
    ]);
    hs = await gateway([['VerifyJWT', 'partner', { algorithms: ['HS256'], secretKey: { env: 'TOLLGATE_E2E_HS_SECRET' }, issuer: 'partner' }]]);
  });

  test('a JWT verified against the JWKS passes; the model server gets the gateway\'s own signed JWT', async () => {
    const r = await chat(jwks, { authorization: `Bearer ${await idpToken('alice')}` });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const assertion = lastUpstream()['x-jwt-assertion'] as string;
    const { payload } = await jwtVerify(assertion, new TextEncoder().encode(SIGNING_SECRET), { issuer: 'tollgate' });
    assert.equal(payload.sub, 'alice');
    assert.equal(payload.tier, 'gold');
  });

  test('claims are identifiers: the spike arrest counts per subject', async () => {
    assert.equal((await chat(jwks, { authorization: `Bearer ${await idpToken('bob')}` })).status, 200);
    assertFault(await chat(jwks, { authorization: `Bearer ${await idpToken('bob')}` }), 429, 'policies.ratelimit.SpikeArrestViolation');
    assert.equal((await chat(jwks, { authorization: `Bearer ${await idpToken('carol')}` })).status, 200);
  });

  test('JWT faults: none sent, wrong audience, unknown key', async () => {
    assertFault(await chat(jwks), 401, 'steps.jwt.FailedToResolveVariable');
    assertFault(await chat(jwks, { authorization: `Bearer ${await idpToken('dave', { aud: 'someone-else' })}` }), 401, 'steps.jwt.JwtAudienceMismatch');
    assertFault(await chat(jwks, { authorization: `Bearer ${await idpToken('dave', { kid: 'rotated-away' })}` }), 401, 'steps.jwt.NoMatchingPublicKey');
  });

  test('an HS256 JWT verified with a shared secret; an expired one is refused', async () => {
    const secret = new TextEncoder().encode(HS_SECRET);
    const good = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer('partner').setExpirationTime('1m').sign(secret);
    assert.equal((await chat(hs, { authorization: `Bearer ${good}` })).status, 200);
    const old = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer('partner').setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(secret);
    assertFault(await chat(hs, { authorization: `Bearer ${old}` }), 401, 'steps.jwt.TokenExpired');
    const forged = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer('partner').setExpirationTime('1m').sign(new TextEncoder().encode('x'.repeat(40)));
    assertFault(await chat(hs, { authorization: `Bearer ${forged}` }), 401, 'steps.jwt.InvalidToken');
  });
});

describe('ServiceCallout, TokenInjection and JavaScript', () => {
  let mediation: Gateway;
  let runaway: Gateway;

  before(async () => {
    mediation = await gateway([
      ['ServiceCallout', 'user-tier', { request: { url: `${calloutUrl}/users/{request.header.x-user}` }, response: 'callout.user', allowedHosts: ['127.0.0.1'] }],
      ['TokenInjection', 'model-auth', { clientCredentials: { tokenUrl: upstreamTokenUrl, clientId: { value: 'tollgate' }, clientSecret: { env: 'TOLLGATE_E2E_UPSTREAM_SECRET' } } }],
      // A limit of its own, as for every script not about time limits: the 200 ms default was missed on a loaded host.
      ['JavaScript', 'tier-header', { source: `request.headers['x-tier'] = context.getVariable('callout.user.body.tier'); delete request.headers['x-user'];`, timeLimit: '5s' }],
    ]);
    runaway = await gateway([['JavaScript', 'spin', { source: 'while (true) {}', timeLimit: '300ms' }]]);
    // Every sandbox worker started (under tsx that takes a while), so the timings measure scripts, not start-up.
    await sandboxPool().ready();
  });

  test('the callout\'s answer feeds a script that sets a header; the model server gets it and the injected token', async () => {
    const r = await chat(mediation, { 'x-user': 'alice' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const headers = lastUpstream();
    assert.equal(headers['x-tier'], 'gold');
    assert.equal(headers['x-user'], undefined, 'the script removed it');
    assert.match(headers.authorization as string, /^Bearer upstream-token-\d+$/);
    secrets.push(String(headers.authorization).slice(7));
    assert.equal((await chat(mediation, { 'x-user': 'bob' })).status, 200);
    assert.equal(lastUpstream()['x-tier'], 'bronze');
    assert.equal(upstreamTokens, 1, 'one upstream token, reused');
  });

  test('a runaway script faults within its time limit while another request completes quickly', async () => {
    const started = performance.now();
    const stuck = chat(runaway).then((r) => ({ r, ms: performance.now() - started }));
    const quick = chat(mediation, { 'x-user': 'alice' }).then((r) => ({ r, ms: performance.now() - started }));
    const [s, q] = await Promise.all([stuck, quick]);
    assert.equal(q.r.status, 200);
    assert.ok(q.ms < s.ms - 50, `the other request took ${q.ms} ms, the runaway one ${s.ms} ms`);
    assertFault(s.r, 500, 'steps.javascript.ScriptTimedOut');
    assert.ok(s.ms < 1500, `the runaway script was stopped after ${s.ms} ms`);
  });

  test('answer headers a script sets that HTTP cannot carry are left out; the answer and the gateway carry on', async () => {
    // As a script copying model text into a header would: a line break or an emoji in a value, a space in a name.
    // The head was written after the script ran, outside any handler: the unhandled rejection ended the process.
    const shaped = await gateway([
      ['JavaScript', 'headers-from-text', { flow: 'response', source: `response.headers['x-line'] = 'line one\\nline two'; response.headers['x-emoji'] = 'hi \u{1F600}'; response.headers['x bad'] = 'v'; response.headers['x-good'] = 'ok';`, timeLimit: '5s' }],
    ]);
    for (let i = 0; i < 2; i++) {
      const r = await chat(shaped);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.headers['x-good'], 'ok');
      assert.equal(r.headers['x-line'], undefined);
      assert.equal(r.headers['x-emoji'], undefined);
    }
  });

  test('loopback is refused by default: a literal URL at config load, a resolved one at request time', async () => {
    await assert.rejects(gateway([['ServiceCallout', 'local', { request: { url: `${calloutUrl}/users/x` } }]]), /loopback/);
    const port = new URL(calloutUrl).port;
    const guarded = await gateway([['ServiceCallout', 'by-name', { request: { url: `http://localhost:${port}/users/{request.header.x-user}` } }]]);
    assertFault(await chat(guarded, { 'x-user': 'alice' }), 500, 'steps.servicecallout.ExecutionFailed');
  });
});

test('no key, secret or token reaches a log line', () => {
  assert.ok(logLines.length > 10, `${logLines.length} log lines captured`);
  for (const secret of new Set(secrets.filter(Boolean))) {
    const leak = logLines.find((l) => l.includes(secret));
    assert.equal(leak, undefined, `a secret (${secret.slice(0, 6)}…) is in a log line`);
  }
});
