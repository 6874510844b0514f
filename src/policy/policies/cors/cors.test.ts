// CORS: config errors, origin patterns, preflights answered in intercept (or refused with 403), and the allow
// headers on actual requests; a disallowed origin gets no CORS headers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GatewayError } from '../../../gateway/errors.js';
import { MemoryCounterStore } from '../../../store/counters/memory.js';
import { fakeContext, testDeps } from '../../testing.js';
import { CORS_FAULTS, cors } from './cors.js';
import { countReads } from '../../../lib/count-reads.js';
import { compileOrigins } from './origin-matcher.js';

const deps = testDeps(new MemoryCounterStore());
const make = (spec: Record<string, unknown>) => cors('c', { allowOrigins: ['https://app.example.com', 'https://*.example.dev'], ...spec }, deps);
const preflight = (origin: string, method = 'POST', headers?: string) =>
  fakeContext({ method: 'OPTIONS', headers: { origin, 'access-control-request-method': method, ...(headers && { 'access-control-request-headers': headers }) } });

test('config: allowOrigins is required and not empty; maxAge is -1 or more', () => {
  assert.throws(() => cors('c', {}, deps), /allowOrigins/);
  assert.throws(() => cors('c', { allowOrigins: [] }, deps), /allowOrigins/);
  assert.throws(() => make({ maxAge: -2 }), /maxAge/);
});

const origins: [origin: string, allowed: boolean][] = [
  ['https://app.example.com', true],
  ['HTTPS://APP.EXAMPLE.COM', true],
  ['https://a.example.dev', true],
  ['https://a.b.example.dev', true],
  ['https://example.dev', false],
  ['https://evil.com/https://a.example.dev', false],
  ['http://app.example.com', false],
];
const matcher = compileOrigins(['https://app.example.com', 'https://*.example.dev']);
for (const [origin, allowed] of origins) test(`origin ${origin} → ${allowed}`, () => assert.equal(matcher.matches(origin), allowed));

test('a preflight from an allowed origin is answered 204 with the allow headers', () => {
  const ctx = preflight('https://app.example.com', 'POST', 'Content-Type, Authorization');
  make({ allowCredentials: true, maxAge: 600 }).intercept!(ctx, {});
  assert.equal(ctx.directResponse!.status, 204);
  assert.deepEqual(ctx.responseHeaders, { vary: 'Origin' });
  assert.deepEqual(ctx.directResponse!.headers, {
    'access-control-allow-origin': 'https://app.example.com',
    'access-control-allow-credentials': 'true',
    'access-control-allow-methods': 'GET, PUT, POST, DELETE',
    'access-control-allow-headers': 'origin, x-requested-with, accept, content-type, authorization, x-api-key',
    'access-control-max-age': '600',
  });
});

test('with `*` and no credentials the answer allows any origin literally', () => {
  const ctx = preflight('https://anyone.test');
  cors('c', { allowOrigins: ['*'], allowHeaders: ['*'] }, deps).intercept!(ctx, {});
  assert.equal(ctx.directResponse!.headers['access-control-allow-origin'], '*');
  assert.equal(ctx.directResponse!.headers.vary, undefined);
  assert.deepEqual(ctx.responseHeaders, {});
});

test("config: credentials refuse origin '*', origin 'null' and expose headers '*', naming the field", () => {
  assert.throws(() => cors('c', { allowOrigins: ['*'], allowCredentials: true }, deps), /allowOrigins[\s\S]*'\*'/);
  assert.throws(() => cors('c', { allowOrigins: ['https://a.example', 'null'], allowCredentials: true }, deps), /allowOrigins[\s\S]*'null'/);
  assert.throws(() => make({ exposeHeaders: ['*'], allowCredentials: true }), /exposeHeaders/);
  assert.doesNotThrow(() => cors('c', { allowOrigins: ['*'], exposeHeaders: ['*'] }, deps));
});

test('with credentials the origin null is never allowed, even when a pattern matches it', () => {
  // Sandboxed iframes and data: URLs send `null`, so any page can: it must not read credentialed answers.
  const policy = cors('c', { allowOrigins: ['n*l'], allowCredentials: true }, deps);
  assert.throws(() => policy.intercept!(preflight('null'), {}), (err: GatewayError) => err.code === CORS_FAULTS.originNotAllowed);
  const actual = fakeContext({ headers: { origin: 'null' } });
  policy.intercept!(actual, {});
  assert.deepEqual(actual.responseHeaders, { vary: 'Origin' });
  const noCredentials = fakeContext({ headers: { origin: 'null' } });
  cors('c', { allowOrigins: ['n*l'] }, deps).intercept!(noCredentials, {});
  assert.equal(noCredentials.responseHeaders['access-control-allow-origin'], 'null');
});

test('allowMethods `*` answers with the method asked, which credentialed preflights need (`*` is literal to them)', () => {
  const ctx = preflight('https://app.example.com', 'PATCH');
  make({ allowMethods: ['*'], allowCredentials: true }).intercept!(ctx, {});
  assert.equal(ctx.directResponse!.headers['access-control-allow-methods'], 'PATCH');
});

const refusals: [name: string, ctx: () => ReturnType<typeof preflight>, code: string][] = [
  ['an origin not allowed', () => preflight('https://evil.com'), CORS_FAULTS.originNotAllowed],
  ['a method not allowed', () => preflight('https://app.example.com', 'PATCH'), CORS_FAULTS.methodNotAllowed],
  ['a header not allowed', () => preflight('https://app.example.com', 'POST', 'x-secret'), CORS_FAULTS.headersNotAllowed],
];
for (const [name, ctx, code] of refusals) {
  test(`a preflight with ${name} is refused 403 ${code}`, () => {
    const c = ctx();
    assert.throws(() => make({}).intercept!(c, {}), (err: GatewayError) => err.status === 403 && err.code === code);
    assert.equal(c.directResponse, undefined);
    assert.deepEqual(c.responseHeaders, { vary: 'Origin' });
  });
}

test('an actual request from an allowed origin gets the headers on its answer; others get only Vary: Origin', () => {
  const policy = make({ exposeHeaders: ['x-request-id', 'x-ratelimit-remaining-requests'] });
  const ok = fakeContext({ headers: { origin: 'https://a.example.dev' } });
  policy.intercept!(ok, {});
  assert.equal(ok.directResponse, undefined);
  assert.deepEqual(ok.responseHeaders, {
    'access-control-allow-origin': 'https://a.example.dev',
    vary: 'Origin',
    'access-control-expose-headers': 'x-request-id, x-ratelimit-remaining-requests',
  });
  const other = fakeContext({ headers: { origin: 'https://evil.com' } });
  policy.intercept!(other, {});
  // A shared cache must not keep this answer (no CORS headers) for the allowed origin, nor the other way round.
  assert.deepEqual(other.responseHeaders, { vary: 'Origin' });
  const sameOrigin = fakeContext();
  policy.intercept!(sameOrigin, {});
  assert.deepEqual(sameOrigin.responseHeaders, { vary: 'Origin' });
});

/** What a pattern means: each `*` one or more DNS labels (the regular expression origins were matched with before). */
function patternMeaning(pattern: string): RegExp {
  const escape = (s: string) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${pattern.split('*').map(escape).join('[a-z0-9-]+(?:\\.[a-z0-9-]+)*')}$`);
}

test('wildcard patterns mean one or more DNS labels per `*`, checked over every short origin', () => {
  const patterns = ['*', '*.x', 'x.*', '*.*', '*-*', 'a*', '*a', '**', '*.*.x', 'x*x', '-*.', '*x*'];
  const texts = [''];
  for (let len = 1; len <= 6; len++) for (const t of texts.filter((s) => s.length === len - 1)) for (const c of 'ax.-') texts.push(t + c);
  for (const pattern of patterns) {
    const { matches } = compileOrigins([`https://${pattern}`]);
    const meaning = patternMeaning(`https://${pattern}`);
    for (const t of texts) assert.equal(matches(`https://${t}`), meaning.test(`https://${t}`), `${pattern} against ${t}`);
  }
});

test('an origin is read once per wildcard pattern, with no regular expression that could backtrack', () => {
  // Counted, not timed: with one regular expression per pattern, `https://*-*-*.example.com` against an 8 KiB Origin
  // of `a-a-a…` took 22 s (every way to share the origin between the three wildcards was tried).
  const { matches } = compileOrigins(['https://*-*-*.example.com', 'https://*.*.example.com']);
  const origin = `https://${'a-'.repeat(300)}!`;
  const { result: allowed, reads, regexRuns } = countReads(() => matches(origin));
  assert.equal(allowed, false);
  assert.equal(regexRuns, 0);
  assert.ok(reads <= 2 * origin.length, `${reads} reads for ${origin.length} characters and two patterns`);
  assert.equal(matches(`https://${'a-'.repeat(300)}a.example.com`), true);
});
