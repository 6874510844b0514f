// VerifyJWT: config checks, HS/RS/ES verification (PEM and JWKS over loopback), every claim fault, clock skew, and
// claims as flow variables that identifiers can read.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT, exportJWK } from 'jose';
import { GatewayError } from '../../../gateway/errors.js';
import { MemoryCounterStore } from '../../../store/counters/memory.js';
import { TestClock, fakeContext, testDeps } from '../../testing.js';
import type { ApimState, Policy } from '../../types.js';
import { compileVariable } from '../../variables.js';
import { VERIFY_JWT_FAULTS as F, verifyJwt } from './verify-jwt.js';

const NOW = Date.parse('2025-06-02T12:00:00Z');
const SEC = Math.floor(NOW / 1000);
const SECRET = 'a-shared-secret-of-at-least-32-bytes!';
const clock = new TestClock(NOW);
const deps = testDeps(new MemoryCounterStore(), { now: clock.now });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }) as string;

function sign(claims: Record<string, unknown>, opts: { alg?: string; key?: KeyObject | Uint8Array; kid?: string; exp?: number } = {}): Promise<string> {
  const alg = opts.alg ?? 'HS256';
  return new SignJWT(claims)
    .setProtectedHeader({ alg, ...(opts.kid && { kid: opts.kid }) })
    .setIssuedAt(SEC)
    .setExpirationTime(opts.exp ?? SEC + 300)
    .sign(opts.key ?? new TextEncoder().encode(SECRET));
}

async function verify(policy: Policy, token: string | undefined): Promise<ApimState> {
  const state: ApimState = {};
  await policy.authenticate!(fakeContext({ headers: token === undefined ? {} : { authorization: `Bearer ${token}` } }), state);
  return state;
}

const fault = (code: string, status = 401) => (err: unknown) => err instanceof GatewayError && err.code === code && err.status === status;

const hs = (extra: Record<string, unknown> = {}) => verifyJwt('v', { algorithms: ['HS256'], secretKey: { value: SECRET }, ...extra }, deps);

describe('config', () => {
  const cases: [name: string, spec: Record<string, unknown>, error: RegExp][] = [
    ['HMAC mixed with RSA', { algorithms: ['HS256', 'RS256'], secretKey: { value: SECRET } }, /cannot be mixed/],
    ['HS without a secret', { algorithms: ['HS256'], publicKey: { value: pem(rsa.publicKey) } }, /secretKey/],
    ['a short HS secret', { algorithms: ['HS512'], secretKey: { value: SECRET } }, /at least 64 bytes/],
    ['RS with both a key and a JWKS', { algorithms: ['RS256'], publicKey: { value: pem(rsa.publicKey) }, jwks: { uri: 'https://idp.example/jwks' } }, /exactly one/],
    ['an EC key for RS256', { algorithms: ['RS256'], publicKey: { value: pem(ec.publicKey) } }, /ec key cannot serve RS256/],
    ['a key that is not PEM', { algorithms: ['ES256'], publicKey: { value: 'nope' } }, /not a PEM public key/],
    ['an unset environment variable', { algorithms: ['HS256'], secretKey: { env: 'TOLLGATE_TEST_UNSET_SECRET' } }, /TOLLGATE_TEST_UNSET_SECRET is not set/],
    ['an unknown algorithm', { algorithms: ['none'], secretKey: { value: SECRET } }, /algorithms/],
    ['a bad timeAllowance', { algorithms: ['HS256'], secretKey: { value: SECRET }, timeAllowance: '30' }, /duration/],
  ];
  for (const [name, spec, error] of cases) test(`${name} is refused`, () => assert.throws(() => verifyJwt('v', spec, deps), error));

  test('a secret from the environment works', async () => {
    process.env.TOLLGATE_TEST_JWT_SECRET = SECRET;
    const policy = verifyJwt('v', { algorithms: ['HS256'], secretKey: { env: 'TOLLGATE_TEST_JWT_SECRET' } }, deps);
    await verify(policy, await sign({ sub: 'alice' }));
  });
});

describe('HS256', () => {
  test('a valid token passes; its claims become flow variables an identifier can read', async () => {
    const state = await verify(hs(), await sign({ sub: 'alice', tier: 'gold', groups: ['a', 'b'] }));
    assert.equal(state.vars!.get('jwt.v.claim.sub'), 'alice');
    assert.equal(state.vars!.get('jwt.v.claim.groups'), '["a","b"]');
    assert.equal(compileVariable('jwt.v.claim.tier')(fakeContext(), state), 'gold');
  });

  test('issuer, audience and subject are checked when configured', async () => {
    const policy = hs({ issuer: 'https://idp', audience: ['tollgate', 'other'], subject: 'alice' });
    await verify(policy, await sign({ iss: 'https://idp', aud: 'tollgate', sub: 'alice' }));
    await assert.rejects(verify(policy, await sign({ iss: 'https://evil', aud: 'tollgate', sub: 'alice' })), fault(F.issuerMismatch));
    await assert.rejects(verify(policy, await sign({ iss: 'https://idp', aud: 'someone', sub: 'alice' })), fault(F.audienceMismatch));
    await assert.rejects(verify(policy, await sign({ iss: 'https://idp', aud: 'tollgate', sub: 'bob' })), fault(F.subjectMismatch));
  });

  test('additionalClaims must match exactly', async () => {
    const policy = hs({ additionalClaims: { tier: 'gold' } });
    await verify(policy, await sign({ tier: 'gold' }));
    await assert.rejects(verify(policy, await sign({ tier: 'silver' })), fault(F.invalidClaim));
    await assert.rejects(verify(policy, await sign({})), fault(F.invalidClaim));
  });

  test('exp and nbf, with timeAllowance for clock skew', async () => {
    const expired = await sign({}, { exp: SEC - 10 });
    await assert.rejects(verify(hs(), expired), fault(F.tokenExpired));
    await verify(hs({ timeAllowance: '30s' }), expired);
    const early = await sign({ nbf: SEC + 20 });
    await assert.rejects(verify(hs(), early), fault(F.tokenNotYetValid));
    await verify(hs({ timeAllowance: '30s' }), early);
  });

  const refused: [name: string, token: () => Promise<string | undefined>, code: string][] = [
    ['no token', async () => undefined, F.failedToResolveVariable],
    ['a bad signature', async () => (await sign({})).slice(0, -4) + 'AAAA', F.invalidToken],
    ['another secret', async () => sign({}, { key: new TextEncoder().encode('another-secret-that-is-32-bytes-long!') }), F.invalidToken],
    ['an algorithm not listed', async () => sign({}, { alg: 'HS384', key: new TextEncoder().encode(SECRET + SECRET) }), F.algorithmNotAllowed],
    ['garbage', async () => 'not.a.jwt', F.failedToDecode],
  ];
  for (const [name, token, code] of refused) test(`${name} → 401 ${code}`, async () => assert.rejects(verify(hs(), await token()), fault(code)));

  test('source reads the token from another variable', async () => {
    const policy = hs({ source: { ref: 'request.header.x-jwt' } });
    const state: ApimState = {};
    const ctx = fakeContext({ headers: { 'x-jwt': await sign({ sub: 'carol' }) } });
    await policy.authenticate!(ctx, state);
    assert.equal(state.vars!.get('jwt.v.claim.sub'), 'carol');
    assert.deepEqual(ctx.upstreamHeaders, { 'x-jwt': null }, 'the token is not sent upstream');
  });
});

describe('public keys', () => {
  test('RS256 with a PEM key', async () => {
    const policy = verifyJwt('rs', { algorithms: ['RS256'], publicKey: { value: pem(rsa.publicKey) } }, deps);
    assert.equal((await verify(policy, await sign({ sub: 'x' }, { alg: 'RS256', key: rsa.privateKey }))).vars!.get('jwt.rs.claim.sub'), 'x');
    await assert.rejects(verify(policy, await sign({}, { alg: 'RS256', key: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey })), fault(F.invalidToken));
  });

  describe('ES256 from a JWKS', () => {
    let server: Server;
    let uri: string;
    let fetches = 0;
    before(async () => {
      const jwk = { ...(await exportJWK(ec.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
      server = createServer((_req, res) => {
        fetches++;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ keys: [jwk] }));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      uri = `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks.json`;
    });
    after(() => new Promise<void>((r) => server.close(() => r())));

    test('the key is found by kid and the JWKS is fetched once', async () => {
      const policy = verifyJwt('es', { algorithms: ['ES256'], jwks: { uri } }, deps);
      for (let i = 0; i < 3; i++) await verify(policy, await sign({ sub: 'y' }, { alg: 'ES256', key: ec.privateKey, kid: 'k1' }));
      assert.equal(fetches, 1);
      await assert.rejects(verify(policy, await sign({}, { alg: 'ES256', key: ec.privateKey, kid: 'other' })), fault(F.noMatchingPublicKey));
    });

    test('a JWKS that cannot be fetched → 500', async () => {
      const policy = verifyJwt('es', { algorithms: ['ES256'], jwks: { uri: 'http://127.0.0.1:1/jwks.json', timeout: '1s' } }, deps);
      await assert.rejects(verify(policy, await sign({}, { alg: 'ES256', key: ec.privateKey, kid: 'k1' })), fault(F.unknownException, 500));
    });
  });
});
