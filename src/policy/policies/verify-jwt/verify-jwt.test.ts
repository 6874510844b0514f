// VerifyJWT: config checks, HS/RS/ES verification (PEM and JWKS over loopback), every claim fault, clock skew,
// claims as flow variables that identifiers can read, and how the JWKS is refreshed when the IdP fails.
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT, exportJWK } from 'jose';
import { pino } from 'pino';
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
const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 });
const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const secp256k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
const rsaPss = generateKeyPairSync('rsa-pss', { modulusLength: 2048 });

/** A token expiring in 5 minutes, or at `exp`; `exp: null` leaves the claim out. */
function sign(claims: Record<string, unknown>, opts: { alg?: string; key?: KeyObject | Uint8Array; kid?: string; exp?: number | null } = {}): Promise<string> {
  const alg = opts.alg ?? 'HS256';
  const jwt = new SignJWT(claims).setProtectedHeader({ alg, ...(opts.kid && { kid: opts.kid }) }).setIssuedAt(SEC);
  if (opts.exp !== null) jwt.setExpirationTime(opts.exp ?? SEC + 300);
  return jwt.sign(opts.key ?? new TextEncoder().encode(SECRET));
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
    // What jose would refuse at every request is refused at load.
    ['a 1024-bit RSA key', { algorithms: ['RS256'], publicKey: { value: pem(rsa1024.publicKey) } }, /spec.publicKey: RS256 needs an RSA key of at least 2048 bits, this one has 1024/],
    ['a P-384 key for ES256', { algorithms: ['ES256'], publicKey: { value: pem(p384.publicKey) } }, /spec.publicKey: ES256 needs a P-256 key, this one is on secp384r1/],
    ['a P-256 key for ES256 and ES384', { algorithms: ['ES256', 'ES384'], publicKey: { value: pem(ec.publicKey) } }, /spec.publicKey: ES384 needs a P-384 key/],
    ['a secp256k1 key', { algorithms: ['ES256'], publicKey: { value: pem(secp256k1.publicKey) } }, /spec.publicKey: ES256 needs a P-256 key, this one is on secp256k1/],
    ['an RSASSA-PSS-only key', { algorithms: ['PS256'], publicKey: { value: pem(rsaPss.publicKey) } }, /spec.publicKey: a rsa-pss key cannot serve PS256/],
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

  test('a token without exp passes unless requireExpiry', async () => {
    const forever = await sign({}, { exp: null });
    await verify(hs(), forever);
    await assert.rejects(verify(hs({ requireExpiry: true }), forever), fault(F.invalidClaim));
    await verify(hs({ requireExpiry: true }), await sign({}));
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

  const usable: [alg: string, key: { publicKey: KeyObject; privateKey: KeyObject }][] = [
    ['PS256', rsa],
    ['RS512', generateKeyPairSync('rsa', { modulusLength: 3072 })],
    ['ES384', p384],
    ['ES512', generateKeyPairSync('ec', { namedCurve: 'P-521' })],
  ];
  for (const [alg, key] of usable) {
    test(`${alg} with a key the load check accepts verifies`, async () => {
      const policy = verifyJwt('pk', { algorithms: [alg], publicKey: { value: pem(key.publicKey) } }, deps);
      assert.equal((await verify(policy, await sign({ sub: alg }, { alg, key: key.privateKey }))).vars!.get('jwt.pk.claim.sub'), alg);
    });
  }

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

describe('JWKS refresh', () => {
  const ec2 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwkOf = async (key: KeyObject, kid: string) => ({ ...(await exportJWK(key)), kid, alg: 'ES256', use: 'sig' });
  const token = (key: KeyObject, kid: string) => sign({}, { alg: 'ES256', key, kid, exp: SEC + 86_400 });
  const MAX_AGE = 10 * 60_000;
  const COOLDOWN = 30_000;

  /** A JWKS endpoint the test steers: it serves `keys`, fails as `answer` says, or holds requests until `serve`. */
  class Idp {
    fetches = 0;
    answer: 'keys' | 'status 503' | 'an HTML page' | 'a malformed set' | 'an oversized set' | 'nothing' = 'keys';
    /** What an oversized set would hold (read whole, it would verify the rotated key at once). */
    oversized: object[] = [];
    keys: object[] = [];
    readonly #held: ServerResponse[] = [];
    #onHeld = () => {};
    readonly #server = createServer((_req, res) => {
      this.fetches++;
      if (this.answer === 'nothing') {
        this.#held.push(res);
        this.#onHeld();
      } else this.#respond(res);
    });

    #respond(res: ServerResponse): void {
      if (this.answer === 'status 503') res.writeHead(503).end('rate limited');
      else if (this.answer === 'an HTML page') res.writeHead(200, { 'content-type': 'text/html' }).end('<html>');
      else if (this.answer === 'an oversized set') res.writeHead(200).end(JSON.stringify({ keys: this.oversized, padding: 'x'.repeat(2 * 1024 * 1024) }));
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: this.answer === 'keys' ? this.keys : 'none' }));
    }

    async start(): Promise<string> {
      await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
      return `http://127.0.0.1:${(this.#server.address() as { port: number }).port}/jwks.json`;
    }

    /** Resolves once a request is being held. */
    holding(): Promise<void> {
      return this.#held.length > 0 ? Promise.resolve() : new Promise((r) => (this.#onHeld = r));
    }

    /** Serves `keys` from now on, held requests included. */
    serve(keys: object[]): void {
      this.answer = 'keys';
      this.keys = keys;
      for (const res of this.#held.splice(0)) this.#respond(res);
    }

    close(): Promise<void> {
      this.#server.closeAllConnections();
      return new Promise((r) => this.#server.close(() => r()));
    }
  }

  let idp: Idp;
  let uri: string;
  let clock: TestClock;
  let policy: Policy;
  let k1: object;
  let k2: object;
  /** What the policy logged. */
  let lines: { level: number; msg: string; uri?: string; reason?: string; keysFetchedAt?: string }[];
  /** A policy on its own clock, so its own key set (shared resources are kept per clock). */
  const jwtPolicy = (spec: Record<string, unknown> = {}, jwks: Record<string, string> = {}) => {
    clock = new TestClock(NOW);
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    return verifyJwt('es', { algorithms: ['ES256'], jwks: { uri, cacheMaxAge: '10m', cooldown: '30s', timeout: '1m', ...jwks }, ...spec }, { ...testDeps(new MemoryCounterStore(), { now: clock.now }), logger });
  };
  beforeEach(async () => {
    [k1, k2] = [await jwkOf(ec.publicKey, 'k1'), await jwkOf(ec2.publicKey, 'k2')];
    idp = new Idp();
    uri = await idp.start();
    idp.keys = [k1];
    lines = [];
    policy = jwtPolicy();
  });
  afterEach(() => idp.close());

  for (const answer of ['status 503', 'an HTML page', 'a malformed set', 'an oversized set'] as const) {
    test(`past cacheMaxAge, a refresh answered with ${answer} keeps the held keys and is retried only after cooldown`, async () => {
      const old = await token(ec.privateKey, 'k1');
      const rotated = await token(ec2.privateKey, 'k2');
      await verify(policy, old);
      idp.answer = answer;
      idp.oversized = [k2];
      clock.advance(MAX_AGE);
      for (let i = 0; i < 20; i++) await verify(policy, old);
      // k2 is not held, so this waits for the refresh in flight, which fails.
      await assert.rejects(verify(policy, rotated), fault(F.noMatchingPublicKey));
      assert.equal(idp.fetches, 2, 'one refresh for all those requests');
      clock.advance(COOLDOWN - 1);
      for (let i = 0; i < 20; i++) await verify(policy, old);
      await assert.rejects(verify(policy, rotated), fault(F.noMatchingPublicKey));
      assert.equal(idp.fetches, 2, 'no fetch within cooldown of the failure');

      idp.serve([k2]);
      clock.advance(1);
      await verify(policy, rotated);
      assert.equal(idp.fetches, 3);
      await assert.rejects(verify(policy, old), fault(F.noMatchingPublicKey), 'a key the refreshed set dropped no longer verifies');
    });
  }

  test('a hanging IdP holds no request up once keys are held, and only one refresh runs', { timeout: 20_000 }, async () => {
    const old = await token(ec.privateKey, 'k1');
    await verify(policy, old);
    idp.answer = 'nothing';
    clock.advance(MAX_AGE);
    await verify(policy, old);
    await idp.holding();
    await Promise.all(Array.from({ length: 50 }, () => verify(policy, old)));
    idp.serve([k1, k2]);
    await verify(policy, await token(ec2.privateKey, 'k2'));
    assert.equal(idp.fetches, 2);
  });

  test('before any key set was fetched, a failure is a 500 and the next fetch waits for cooldown', async () => {
    const good = await token(ec.privateKey, 'k1');
    idp.answer = 'status 503';
    await Promise.all(Array.from({ length: 10 }, () => assert.rejects(verify(policy, good), fault(F.unknownException, 500))));
    await assert.rejects(verify(policy, good), fault(F.unknownException, 500));
    assert.equal(idp.fetches, 1);
    idp.serve([k1]);
    clock.advance(COOLDOWN - 1);
    await assert.rejects(verify(policy, good), fault(F.unknownException, 500));
    clock.advance(1);
    await verify(policy, good);
    assert.equal(idp.fetches, 2);
  });

  test('an unknown kid refetches the set at most once per cooldown', async () => {
    await verify(policy, await token(ec.privateKey, 'k1'));
    idp.serve([k1, k2]);
    const rotated = await token(ec2.privateKey, 'k2');
    await assert.rejects(verify(policy, rotated), fault(F.noMatchingPublicKey));
    assert.equal(idp.fetches, 1);
    clock.advance(COOLDOWN);
    await verify(policy, rotated);
    assert.equal(idp.fetches, 2);
    await assert.rejects(verify(policy, await token(ec2.privateKey, 'k3')), fault(F.noMatchingPublicKey));
    assert.equal(idp.fetches, 2);
  });
  describe('several keys fit a token (no kid, keys without one, a repeated kid: an IdP mid-rotation)', () => {
    const third = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const withoutKid = ({ kid: _kid, ...jwk }: Record<string, unknown>) => jwk;
    const cases: [name: string, keys: () => object[], kid: string | undefined][] = [
      ['a token without a kid', () => [k1, k2], undefined],
      ['keys without a kid', () => [withoutKid(k1 as Record<string, unknown>), withoutKid(k2 as Record<string, unknown>)], undefined],
      ['a repeated kid', () => [k1, { ...k2, kid: 'k1' }], 'k1'],
    ];
    for (const [name, keys, kid] of cases) {
      test(`${name}: each is tried, the one that signed verifies, a token no key signed is a 401`, async () => {
        idp.keys = keys();
        const signed = (key: KeyObject) => sign({}, { alg: 'ES256', key, ...(kid && { kid }) });
        await verify(policy, await signed(ec2.privateKey));
        await verify(policy, await signed(ec.privateKey));
        await assert.rejects(verify(policy, await signed(third.privateKey)), fault(F.invalidToken));
      });
    }

    test('an RSA key jose will not use (1024 bits) is passed over, and logged once when no other key verifies', async () => {
      const [weak, good, other] = [1024, 2048, 2048].map((modulusLength) => generateKeyPairSync('rsa', { modulusLength }));
      const jwk = async (key: KeyObject) => ({ ...(await exportJWK(key)), alg: 'RS256', use: 'sig' });
      idp.keys = [await jwk(weak.publicKey), await jwk(good.publicKey)];
      const rs = jwtPolicy({ algorithms: ['RS256'] });
      const signed = (key: KeyObject) => sign({}, { alg: 'RS256', key });
      await verify(rs, await signed(good.privateKey));
      const stranger = await signed(other.privateKey);
      for (let i = 0; i < 3; i++) await assert.rejects(verify(rs, stranger), fault(F.invalidToken));
      assert.deepEqual(lines.map((l) => [l.level, l.reason]), [[40, 'RS256 requires key modulusLength to be 2048 bits or larger']]);
    });
  });

  describe('why a fetch failed is logged, once per outage, and the recovery once', () => {
    const tokenless = () => lines.every((l) => !JSON.stringify(l).includes('eyJ'));

    test('before any key set: the status, not repeated by each retry', async () => {
      const good = await token(ec.privateKey, 'k1');
      idp.answer = 'status 503';
      for (let i = 0; i < 3; i++) {
        await assert.rejects(verify(policy, good), fault(F.unknownException, 500));
        clock.advance(COOLDOWN);
      }
      assert.equal(idp.fetches, 3);
      assert.deepEqual(lines.map((l) => [l.level, l.uri, l.reason]), [[40, uri, `the JWKS at ${uri} answered 503`]]);
      assert.match(lines[0].msg, /refused \(500\) until it can/);
      idp.serve([k1]);
      await verify(policy, good);
      await verify(policy, good);
      assert.deepEqual(lines.map((l) => [l.level, l.msg]).slice(1), [[30, 'the JWKS can be fetched again']]);
      assert.ok(tokenless());
    });

    test('before any key set: a timeout', async () => {
      idp.answer = 'nothing';
      const slow = jwtPolicy({}, { timeout: '100ms' });
      await assert.rejects(verify(slow, await token(ec.privateKey, 'k1')), fault(F.unknownException, 500));
      assert.deepEqual(lines.map((l) => l.reason), ['no complete answer within 100 ms']);
    });

    test('while keys are held: each new reason a background refresh fails for, then the recovery', async () => {
      const old = await token(ec.privateKey, 'k1');
      const rotated = await token(ec2.privateKey, 'k2');
      await verify(policy, old);
      assert.equal(lines.length, 0);
      /** Past cacheMaxAge a request starts the refresh; the rotated kid waits for it. */
      const refreshFails = async () => {
        clock.advance(Math.max(MAX_AGE, COOLDOWN));
        await verify(policy, old);
        await assert.rejects(verify(policy, rotated), fault(F.noMatchingPublicKey));
      };
      idp.answer = 'an oversized set';
      await refreshFails();
      await refreshFails();
      idp.answer = 'status 503';
      await refreshFails();
      assert.equal(idp.fetches, 4);
      assert.deepEqual(lines.map((l) => [l.level, l.reason]), [
        [40, `the JWKS at ${uri} is larger than 1048576 bytes`],
        [40, `the JWKS at ${uri} answered 503`],
      ]);
      assert.equal(lines[0].keysFetchedAt, new Date(NOW).toISOString());
      assert.match(lines[0].msg, /verified with the keys held/);
      idp.serve([k1, k2]);
      clock.advance(COOLDOWN);
      await verify(policy, rotated);
      assert.deepEqual(lines.map((l) => [l.level, l.msg]).slice(2), [[30, 'the JWKS can be fetched again']]);
      assert.ok(tokenless());
    });
  });
});
