// OAuthV2: the token endpoint (grant types, client authentication, scopes, expiry) and VerifyAccessToken (each fault,
// entitlement, revocation within the cache's bound), over an in-memory token table.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError } from '../../../gateway/errors.js';
import { MemoryCounterStore } from '../../../store/counters/memory.js';
import { CachedAccessTokens, type AccessTokenBackend } from '../../access-token-cache.js';
import type { AccessTokenGrant, IssuedAccessToken } from '../../access-token-source.js';
import { MemoryIdentitySource } from '../../memory-identity.js';
import { TestClock, fakeContext, testDeps, type FakeRequest } from '../../testing.js';
import type { ApimState, Policy } from '../../types.js';
import { OAUTH_V2_FAULTS as F, oauthV2 } from './oauth-v2.js';

const NOW = Date.parse('2025-06-02T12:00:00Z');

class MemoryTokens implements AccessTokenBackend {
  readonly rows = new Map<string, IssuedAccessToken>();
  lookups = 0;
  down = false;
  /** Lookups and inserts never answer (the connection stays open, nothing gets through). */
  stalled = false;
  async insert(t: IssuedAccessToken): Promise<void> {
    if (this.stalled) await new Promise(() => {});
    this.rows.set(t.tokenHash, t);
  }
  async find(hash: string): Promise<AccessTokenGrant | undefined> {
    this.lookups++;
    if (this.stalled) await new Promise(() => {});
    if (this.down) throw new Error('connection refused');
    return this.rows.get(hash);
  }
}

function setup() {
  const clock = new TestClock(NOW);
  const table = new MemoryTokens();
  const identity = new MemoryIdentitySource([{ name: 'chat-ops', spec: { apiProductRefs: [{ name: 'chat' }], llmOperations: { models: ['small'] } } }]);
  identity.accessTokens = new CachedAccessTokens(table, { now: clock.now });
  identity.add({ key: 'tg_client', secret: 'tgs_secret', keyId: 'key_client', products: [{ name: 'chat', status: 'approved', scopes: ['chat', 'embed'] }] });
  identity.add({ key: 'tg_nosecret', products: ['chat'] });
  identity.add({ key: 'tg_revoked', secret: 'tgs_r', status: 'revoked', products: ['chat'] });
  identity.add({ key: 'tg_soon', secret: 'tgs_soon', expiresAt: NOW + 60_000, products: ['chat'] });
  const deps = testDeps(new MemoryCounterStore(), { identity, now: clock.now });
  const issue = oauthV2('token', { operation: 'GenerateAccessToken' }, deps);
  const verify = oauthV2('verify', { operation: 'VerifyAccessToken' }, deps);
  return { clock, table, identity, deps, issue, verify };
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

async function tokenCall(policy: Policy, form: string, headers: Record<string, string> = FORM, req: FakeRequest = {}) {
  const ctx = fakeContext({ url: '/oauth/token', headers, ...req });
  ctx.readBody = async () => Buffer.from(form);
  await policy.intercept!(ctx, {});
  return ctx;
}

/** The error a token call that must be refused throws. */
function refusal(policy: Policy, form: string): Promise<GatewayError> {
  return tokenCall(policy, form).then(() => assert.fail('accepted'), (e: GatewayError) => e);
}

async function token(policy: Policy, form = 'grant_type=client_credentials&client_id=tg_client&client_secret=tgs_secret'): Promise<any> {
  const ctx = await tokenCall(policy, form);
  assert.equal(ctx.directResponse?.status, 200, String(ctx.directResponse?.body));
  return JSON.parse(String(ctx.directResponse!.body));
}

async function verified(policy: Policy, accessToken: string, req: FakeRequest = {}): Promise<ApimState> {
  const ctx = fakeContext({ model: 'small', ...req, headers: { authorization: `Bearer ${accessToken}` } });
  const state: ApimState = {};
  await policy.authenticate!(ctx, state);
  await policy.admit!(ctx, state);
  return state;
}

function fault(code: string, status = 401) {
  return (err: unknown) => err instanceof GatewayError && err.code === code && err.status === status;
}

describe('config', () => {
  const { deps } = setup();
  test('an operation is required; unknown fields are refused', () => {
    assert.throws(() => oauthV2('o', {}, deps), /operation/);
    assert.throws(() => oauthV2('o', { operation: 'RefreshAccessToken' }, deps), /operation/);
    assert.throws(() => oauthV2('o', { operation: 'VerifyAccessToken', scopes: 'x' }, deps), /Unrecognized key/);
  });
  test('a bad or too short expiresIn is refused', () => {
    assert.throws(() => oauthV2('o', { operation: 'GenerateAccessToken', expiresIn: '3600' }, deps), /duration/);
    assert.throws(() => oauthV2('o', { operation: 'GenerateAccessToken', expiresIn: '10ms' }, deps), /at least 1s/);
  });
  test('without a token store the policy cannot be built', () => {
    const bare = testDeps(new MemoryCounterStore());
    assert.throws(() => oauthV2('o', { operation: 'VerifyAccessToken' }, bare), /access-token store/);
  });
});

describe('token endpoint', () => {
  test('client credentials in the form give a Bearer token with the products\' scopes', async () => {
    const { issue } = setup();
    const body = await token(issue);
    assert.match(body.access_token, /^tgat_[0-9A-Za-z]{40}$/);
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.expires_in, 3600);
    assert.equal(body.scope, 'chat embed');
  });

  test('HTTP Basic works; the answer is not cacheable; only the hash is stored', async () => {
    const { issue, table } = setup();
    const ctx = await tokenCall(issue, 'grant_type=client_credentials', { ...FORM, authorization: basic('tg_client', 'tgs_secret') });
    assert.equal(ctx.directResponse!.headers['cache-control'], 'no-store');
    const issued = JSON.parse(String(ctx.directResponse!.body)).access_token;
    assert.ok(![...table.rows.values()].some((r) => JSON.stringify(r).includes(issued)));
  });

  test('other paths and methods pass through', async () => {
    const { issue } = setup();
    assert.equal((await tokenCall(issue, '', FORM, { url: '/v1/chat/completions' })).directResponse, undefined);
    assert.equal((await tokenCall(issue, '', FORM, { method: 'GET' })).directResponse, undefined);
  });

  test('a requested scope must be offered by an approved product', async () => {
    const { issue } = setup();
    assert.equal((await token(issue, 'grant_type=client_credentials&client_id=tg_client&client_secret=tgs_secret&scope=chat')).scope, 'chat');
    await assert.rejects(tokenCall(issue, 'grant_type=client_credentials&client_id=tg_client&client_secret=tgs_secret&scope=admin'), fault(F.invalidScope, 400));
  });

  test('a token never outlives its key', async () => {
    const { issue } = setup();
    assert.equal((await token(issue, 'grant_type=client_credentials&client_id=tg_soon&client_secret=tgs_soon')).expires_in, 60);
  });

  test('an expired key is told so (not "not approved"), in RFC 6749 §5.2\'s shape', async () => {
    const { issue, clock } = setup();
    clock.advance(60_000);
    const err = await refusal(issue, 'grant_type=client_credentials&client_id=tg_soon&client_secret=tgs_soon');
    const answer = err.toResponse('openai');
    assert.equal(answer.status, 401);
    assert.deepEqual(JSON.parse(answer.body), { error: 'invalid_client', error_description: 'Client authentication failed: the key has expired' });
  });

  const refused: [name: string, form: string, code: string, status: number, headers?: Record<string, string>][] = [
    ['no grant_type', 'client_id=tg_client&client_secret=tgs_secret', F.invalidRequest, 400],
    ['another grant type', 'grant_type=password&username=a&password=b', F.unsupportedGrantType, 400],
    ['no client', 'grant_type=client_credentials', F.invalidClient, 401],
    ['a wrong secret', 'grant_type=client_credentials&client_id=tg_client&client_secret=nope', F.invalidClient, 401],
    ['an unknown client', 'grant_type=client_credentials&client_id=tg_nobody&client_secret=tgs_secret', F.invalidClient, 401],
    ['a key without a secret', 'grant_type=client_credentials&client_id=tg_nosecret&client_secret=x', F.invalidClient, 401],
    ['a revoked key', 'grant_type=client_credentials&client_id=tg_revoked&client_secret=tgs_r', F.invalidClient, 401],
    ['a JSON body', '{"grant_type":"client_credentials"}', F.invalidRequest, 400, { 'content-type': 'application/json' }],
    // RFC 6749 §3.2: each parameter at most once; whichever of two values wins, a reader after us may pick the other.
    ['grant_type twice', 'grant_type=client_credentials&grant_type=password&client_id=tg_client&client_secret=tgs_secret', F.invalidRequest, 400],
    ['client_id twice', 'grant_type=client_credentials&client_id=tg_client&client_id=other&client_secret=tgs_secret', F.invalidRequest, 400],
    ['client_secret twice', 'grant_type=client_credentials&client_id=tg_client&client_secret=tgs_secret&client_secret=x', F.invalidRequest, 400],
    ['scope twice', 'grant_type=client_credentials&client_id=tg_client&client_secret=tgs_secret&scope=chat&scope=embed', F.invalidRequest, 400],
  ];
  for (const [name, form, code, status, headers] of refused) {
    test(`${name} → ${status} ${code}`, async () => {
      const { issue } = setup();
      await assert.rejects(tokenCall(issue, form, headers), fault(code, status));
    });
  }

  test('a wrong Basic secret asks for Basic again; credentials given twice are refused', async () => {
    const { issue } = setup();
    await assert.rejects(tokenCall(issue, 'grant_type=client_credentials', { ...FORM, authorization: basic('tg_client', 'bad') }), (err: GatewayError) => {
      assert.equal(err.code, F.invalidClient);
      assert.match(err.headers['www-authenticate'], /^Basic/);
      return true;
    });
    const twice = tokenCall(issue, 'grant_type=client_credentials&client_id=tg_client', { ...FORM, authorization: basic('tg_client', 'tgs_secret') });
    await assert.rejects(twice, fault(F.invalidRequest, 400));
  });

  test('HTTP Basic that cannot be read is a failed client authentication: 401 invalid_client, challenged (RFC 6749 §5.2)', async () => {
    const { issue } = setup();
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    for (const auth of ['Basic %%%', 'Basic', `Basic ${b64('tg_client')}`, `Basic ${b64('%zz:tgs_secret')}`, `basic  ${b64('tg_client')} ${b64('x')}`]) {
      await assert.rejects(tokenCall(issue, 'grant_type=client_credentials', { ...FORM, authorization: auth }), (err: GatewayError) => {
        assert.equal(err.status, 401, auth);
        assert.equal(err.code, F.invalidClient, auth);
        assert.equal(err.headers['www-authenticate'], 'Basic realm="tollgate"', auth);
        return true;
      });
    }
  });

  test('a grant type or scope quoted back is clipped, in either fault format', async () => {
    const { issue } = setup();
    const huge = 'x'.repeat(1 << 20);
    for (const form of [`grant_type=${huge}`, `grant_type=client_credentials&client_id=tg_client&client_secret=tgs_secret&scope=${huge}`]) {
      const err = await refusal(issue, form);
      assert.equal(err.status, 400);
      for (const format of ['openai', 'apigee'] as const) assert.ok(err.toResponse(format).body.length < 2048, `${err.code} in ${format}: ${err.toResponse(format).body.length} bytes`);
    }
  });

  test('refusals are answered in RFC 6749 §5.2\'s shape, the fault code beside it in the apigee format', async () => {
    const { issue } = setup();
    const err = await refusal(issue, 'grant_type=client_credentials&client_id=tg_client&client_secret=nope');
    const openai = err.toResponse('openai');
    assert.equal(openai.status, 401);
    assert.deepEqual(JSON.parse(openai.body), { error: 'invalid_client', error_description: 'Client authentication failed: unknown client or wrong secret' });
    assert.equal(openai.headers['content-type'], 'application/json');
    assert.equal(openai.headers['cache-control'], 'no-store');
    const apigee = JSON.parse(err.toResponse('apigee').body);
    assert.equal(apigee.error, 'invalid_client');
    assert.deepEqual(apigee.fault.detail, { errorcode: F.invalidClient });
    const codes: [form: string, error: string][] = [
      ['client_id=tg_client', 'invalid_request'],
      ['grant_type=password', 'unsupported_grant_type'],
      ['grant_type=client_credentials&client_id=tg_client&client_secret=tgs_secret&scope=admin', 'invalid_scope'],
    ];
    for (const [form, error] of codes) {
      const refusal = await tokenCall(issue, form).then(() => assert.fail(form), (e: GatewayError) => e.toResponse());
      assert.equal(JSON.parse(refusal.body).error, error, form);
      assert.equal(refusal.status, 400);
    }
  });
});

describe('VerifyAccessToken', () => {
  test('a token identifies its key and is entitled like the key', async () => {
    const { issue, verify } = setup();
    const { access_token } = await token(issue);
    const state = await verified(verify, access_token);
    assert.equal(state.key!.keyId, 'key_client');
    assert.equal(state.product!.name, 'chat');
    assert.equal(state.vars!.get('oauthv2accesstoken.verify.scope'), 'chat embed');
  });

  test('a model the products do not grant → 401 no product match', async () => {
    const { issue, verify } = setup();
    const { access_token } = await token(issue);
    await assert.rejects(verified(verify, access_token, { model: 'large' }), fault(F.noProductMatch));
  });

  test('no Bearer header; a token of another kind; an unknown token', async () => {
    const { verify } = setup();
    assert.throws(() => verify.authenticate!(fakeContext(), {}), fault(F.invalidAccessTokenHeader));
    await assert.rejects(verified(verify, 'tg_client'), fault(F.invalidAccessToken));
    await assert.rejects(verified(verify, 'tgat_unknown'), fault(F.invalidAccessToken));
  });

  test('every refusal challenges for a Bearer token (RFC 6750 §3), naming the error once a token was sent', async () => {
    const { issue, verify, deps, clock } = setup();
    const challenge = (err: unknown) => (err as GatewayError).headers['www-authenticate'];
    const caught = (p: Promise<unknown>) => p.then(() => assert.fail('accepted'), (err: unknown) => err);
    assert.throws(() => verify.authenticate!(fakeContext(), {}), (err) => challenge(err) === 'Bearer realm="tollgate"');
    assert.equal(challenge(await caught(verified(verify, 'tgat_unknown'))), 'Bearer realm="tollgate", error="invalid_token"');
    const { access_token: embedOnly } = await token(issue, 'grant_type=client_credentials&client_id=tg_client&client_secret=tgs_secret&scope=embed');
    const needsChat = oauthV2('needs-chat', { operation: 'VerifyAccessToken', scope: 'chat' }, deps);
    const scopeFault = await caught(verified(needsChat, embedOnly));
    assert.equal((scopeFault as GatewayError).status, 403);
    assert.equal(challenge(scopeFault), 'Bearer realm="tollgate", error="insufficient_scope"');
    assert.equal(challenge(await caught(verified(verify, embedOnly, { model: 'large' }))), 'Bearer realm="tollgate", error="insufficient_scope"');
    clock.advance(3600_000);
    assert.equal(challenge(await caught(verified(verify, embedOnly))), 'Bearer realm="tollgate", error="invalid_token"');
  });

  test('an expired token → 401 access_token_expired', async () => {
    const { issue, verify, clock } = setup();
    const { access_token } = await token(issue);
    clock.advance(3600_000);
    await assert.rejects(verified(verify, access_token), fault(F.accessTokenExpired));
  });

  test('a revoked token stops working once the cache entry is older than a second', async () => {
    const { issue, verify, clock, table } = setup();
    const { access_token } = await token(issue);
    await verified(verify, access_token);
    table.rows.clear();
    await verified(verify, access_token);
    clock.advance(1001);
    await assert.rejects(verified(verify, access_token), fault(F.invalidAccessToken));
  });

  test('a token of a revoked key → 401 access_token_not_approved', async () => {
    const { issue, verify, identity } = setup();
    const { access_token } = await token(issue);
    identity.add({ key: 'tg_client', secret: 'tgs_secret', keyId: 'key_client', status: 'revoked', products: ['chat'] });
    await assert.rejects(verified(verify, access_token), fault(F.accessTokenNotApproved));
  });

  test('a required scope the token lacks → 403 InsufficientScope', async () => {
    const { issue, deps } = setup();
    const { access_token } = await token(issue, 'grant_type=client_credentials&client_id=tg_client&client_secret=tgs_secret&scope=embed');
    const needsChat = oauthV2('needs-chat', { operation: 'VerifyAccessToken', scope: 'chat admin' }, deps);
    await assert.rejects(verified(needsChat, access_token), fault(F.insufficientScope, 403));
  });

  test('a token table that does not answer → 500, never a pass', async () => {
    const { verify, table } = setup();
    table.down = true;
    await assert.rejects(verified(verify, 'tgat_whatever'), fault('extension_failed', 500));
  });

  test('a token table that stalls → 500 once the lookup deadline passes; the requests share one lookup', { timeout: 15_000 }, async () => {
    const { verify, table } = setup();
    table.stalled = true;
    await Promise.all([1, 2].map(() => assert.rejects(verified(verify, 'tgat_whatever'), fault('extension_failed', 500))));
    assert.equal(table.lookups, 1);
  });

  test('a token table that stalls on the insert → the token request gets 500 once the deadline passes', { timeout: 15_000 }, async () => {
    const { issue, table } = setup();
    table.stalled = true;
    await assert.rejects(token(issue, 'grant_type=client_credentials&client_id=tg_client&client_secret=tgs_secret'), fault('extension_failed', 500));
  });
});

describe('token cache', () => {
  test('concurrent lookups of one token share one query; a miss is remembered for the TTL', async () => {
    const { verify, table, clock } = setup();
    const results = await Promise.allSettled([1, 2, 3].map(() => verified(verify, 'tgat_missing')));
    assert.ok(results.every((r) => r.status === 'rejected'));
    assert.equal(table.lookups, 1);
    await assert.rejects(verified(verify, 'tgat_missing'));
    assert.equal(table.lookups, 1);
    clock.advance(1001);
    await assert.rejects(verified(verify, 'tgat_missing'));
    assert.equal(table.lookups, 2);
  });

  /** A table whose i-th lookup settles when the test calls `lookups[i](grant or Error)`. */
  function heldTable() {
    const lookups: ((answer: AccessTokenGrant | Error) => void)[] = [];
    const backend: AccessTokenBackend = {
      insert: async () => {},
      find: () => new Promise((resolve, reject) => lookups.push((a) => (a instanceof Error ? reject(a) : resolve(a)))),
    };
    return { backend, lookups };
  }
  const GRANT: AccessTokenGrant = { keyHash: 'k', scopes: [], expiresAt: NOW + 3600_000 };

  test('a lookup slower than the TTL stays the only one for its token until it settles', async () => {
    const clock = new TestClock(NOW);
    const { backend, lookups } = heldTable();
    const cache = new CachedAccessTokens(backend, { now: clock.now });
    const first = cache.find('h');
    clock.advance(5000);
    const second = cache.find('h');
    assert.equal(lookups.length, 1);
    lookups[0](GRANT);
    assert.deepEqual(await Promise.all([first, second]), [GRANT, GRANT]);
    assert.deepEqual(cache.find('h'), GRANT);
  });

  test('a lookup that fails late leaves the newer entry its token has by then', async () => {
    const clock = new TestClock(NOW);
    const { backend, lookups } = heldTable();
    const cache = new CachedAccessTokens(backend, { now: clock.now, maxEntries: 1 });
    const late = Promise.resolve(cache.find('h')).catch((err: unknown) => err);
    // Another token takes the only place: the first lookup's entry is evicted while it runs.
    await cache.save({ tokenHash: 'other', keyId: 'key', keyHash: 'k', scopes: [], issuedAt: NOW, expiresAt: NOW + 3600_000 });
    const fresh = cache.find('h');
    lookups[1](GRANT);
    await fresh;
    lookups[0](new Error('connection lost'));
    assert.ok((await late) instanceof Error);
    assert.deepEqual(cache.find('h'), GRANT);
    assert.equal(lookups.length, 2);
  });
});
