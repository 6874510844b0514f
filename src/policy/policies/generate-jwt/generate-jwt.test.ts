// GenerateJWT: config checks (registered claims refused in additionalClaims), HS256 and RS256 tokens with claims from
// variables, unset variables left out, the output header (Bearer for Authorization), and expiry from the injected clock.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { MemoryCounterStore } from '../../../store/counters/memory.js';
import { TestClock, fakeContext, testDeps } from '../../testing.js';
import type { ApimState } from '../../types.js';
import { generateJwt } from './generate-jwt.js';

const NOW = Date.parse('2025-06-02T12:00:00Z');
const SECRET = 'a-shared-secret-of-at-least-32-bytes!';
const deps = testDeps(new MemoryCounterStore(), { now: new TestClock(NOW).now });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const pkcs8 = (key: KeyObject) => key.export({ type: 'pkcs8', format: 'pem' }) as string;
const privatePem = pkcs8(rsa.privateKey);

async function generated(spec: Record<string, unknown>, headers: Record<string, string> = {}, state: ApimState = {}) {
  const ctx = fakeContext({ headers });
  await generateJwt('g', spec, deps).admit!(ctx, state);
  return ctx.upstreamHeaders!;
}

describe('config', () => {
  const cases: [name: string, spec: Record<string, unknown>, error: RegExp][] = [
    ['HS without a secret', { algorithm: 'HS256' }, /secretKey/],
    ['RS with a secret', { algorithm: 'RS256', secretKey: { value: SECRET } }, /privateKey/],
    ['a short secret', { algorithm: 'HS256', secretKey: { value: 'short' } }, /at least 32 bytes/],
    ['a private key that is not PEM', { algorithm: 'RS256', privateKey: { value: 'nope' } }, /not a PEM private key/],
    // jose would refuse these at every request: refused at load instead.
    ['a 1024-bit RSA key', { algorithm: 'RS256', privateKey: { value: pkcs8(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey) } }, /spec.privateKey: RS256 needs an RSA key of at least 2048 bits/],
    ['a P-384 key for ES256', { algorithm: 'ES256', privateKey: { value: pkcs8(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey) } }, /spec.privateKey: ES256 needs a P-256 key, this one is on secp384r1/],
    ['an RSA key for ES512', { algorithm: 'ES512', privateKey: { value: privatePem } }, /spec.privateKey: a rsa key cannot serve ES512/],
    ['an unknown variable in a claim', { algorithm: 'HS256', secretKey: { value: SECRET }, additionalClaims: { a: '{request.nothing}' } }, /unknown variable/],
    // A template renders a string (a string nbf makes every verifier refuse the token), and the setters replaced iss,
    // exp and iat silently.
    ...['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti'].map(
      (claim): [string, Record<string, unknown>, RegExp] => [`the registered claim ${claim} in additionalClaims`, { algorithm: 'HS256', secretKey: { value: SECRET }, additionalClaims: { [claim]: '{request.header.x-v}' } }, new RegExp(`additionalClaims\\.${claim}: a registered JWT claim`)],
    ),
  ];
  for (const [name, spec, error] of cases) test(`${name} is refused`, () => assert.throws(() => generateJwt('g', spec, deps), error));

  test('an error about a private key never quotes it', () => {
    const broken = privatePem.replace('MII', 'XII');
    assert.throws(() => generateJwt('g', { algorithm: 'RS256', privateKey: { value: broken } }, deps), (err: Error) => !err.message.includes('XII'));
  });
});

describe('signing', () => {
  test('HS256: claims from variables, issuer, audience, expiry; an unset variable leaves its claim out', async () => {
    const headers = await generated(
      {
        algorithm: 'HS256',
        secretKey: { value: SECRET },
        issuer: 'tollgate',
        audience: 'model-servers',
        subject: '{request.header.x-user}',
        expiresIn: '2m',
        additionalClaims: { tenant: 'acme-{request.header.x-tenant}', missing: '{request.header.x-absent}', fixed: 'yes' },
      },
      { 'x-user': 'alice', 'x-tenant': 't1' },
    );
    const { payload } = await jwtVerify(headers['x-jwt-assertion']!, new TextEncoder().encode(SECRET), { currentDate: new Date(NOW) });
    assert.equal(payload.iss, 'tollgate');
    assert.equal(payload.aud, 'model-servers');
    assert.equal(payload.sub, 'alice');
    assert.equal(payload.tenant, 'acme-t1');
    assert.equal(payload.fixed, 'yes');
    assert.equal('missing' in payload, false);
    assert.equal(payload.exp! - payload.iat!, 120);
    assert.equal(payload.iat, NOW / 1000);
  });

  test('RS256 with a kid and a jti, into Authorization as a Bearer token', async () => {
    const headers = await generated({ algorithm: 'RS256', privateKey: { value: privatePem }, keyId: 'k1', id: true, outputHeader: 'Authorization' });
    const token = headers.authorization!;
    assert.match(token, /^Bearer /);
    assert.equal(decodeProtectedHeader(token.slice(7)).kid, 'k1');
    const { payload } = await jwtVerify(token.slice(7), rsa.publicKey, { currentDate: new Date(NOW) });
    assert.match(payload.jti!, /^[0-9a-f-]{36}$/);
  });

  test('ES512 with a P-521 key', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-521' });
    const headers = await generated({ algorithm: 'ES512', privateKey: { value: pkcs8(ec.privateKey) } });
    assert.equal((await jwtVerify(headers['x-jwt-assertion']!, ec.publicKey, { currentDate: new Date(NOW) })).protectedHeader.alg, 'ES512');
  });

  test('identity variables come from the verified key', async () => {
    const state: ApimState = { key: { keyId: 'key_1', status: 'approved', expiresAt: null, appId: 'app-1', appName: 'shop', appStatus: 'approved', developerId: 'd', developerEmail: 'dev@example.com', developerStatus: 'active', products: [] } };
    const headers = await generated({ algorithm: 'HS256', secretKey: { value: SECRET }, subject: '{developer.email}', additionalClaims: { app: '{app.name}' } }, {}, state);
    const { payload } = await jwtVerify(headers['x-jwt-assertion']!, new TextEncoder().encode(SECRET), { currentDate: new Date(NOW) });
    assert.equal(payload.sub, 'dev@example.com');
    assert.equal(payload.app, 'shop');
  });
});
