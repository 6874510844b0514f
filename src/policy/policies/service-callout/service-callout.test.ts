// ServiceCallout: the request built from variables, the answer as variables, faults (status, timeout, size), and
// the SSRF guard: loopback, metadata and private addresses refused at config load and at request time (after DNS).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { pino } from 'pino';
import { GatewayError } from '../../../gateway/errors.js';
import { MemoryCounterStore } from '../../../store/counters/memory.js';
import { fakeContext, testDeps, type FakeRequest } from '../../testing.js';
import type { ApimState } from '../../types.js';
import { refusalOf } from './destination-guard.js';
import { SERVICE_CALLOUT_FAULTS as F, serviceCallout } from './service-callout.js';

const deps = testDeps(new MemoryCounterStore());
let server: Server;
let base: string;
const seen: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[] = [];

before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      if (req.url!.startsWith('/slow')) return void setTimeout(() => res.end('{}'), 500);
      if (req.url!.startsWith('/big')) return void res.end('x'.repeat(5000));
      if (req.url!.startsWith('/fail')) return void ((res.statusCode = 503), res.end('{"error":"down"}'));
      if (req.url!.startsWith('/text')) return void res.end('plain text');
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ user: { tier: 'gold', limits: [10, 20] }, ok: true }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

const local = (spec: Record<string, unknown>) => serviceCallout('c', { allowedHosts: ['127.0.0.1'], ...spec }, deps);

async function run(spec: Record<string, unknown>, req: FakeRequest = {}): Promise<ApimState> {
  const state: ApimState = {};
  await local(spec).admit!(fakeContext(req), state);
  return state;
}

/** Deps whose logger keeps its lines: the detail a fault withholds from the client is logged. */
function loggedDeps() {
  const lines: Record<string, unknown>[] = [];
  return { lines, deps: { ...deps, logger: pino({ level: 'warn' }, { write: (l: string) => void lines.push(JSON.parse(l)) }) } };
}

const fault = (pattern: RegExp) => (err: unknown) => err instanceof GatewayError && err.code === F.executionFailed && err.status === 500 && pattern.test(err.message);

describe('the call', () => {
  test('URL, headers and JSON body from variables; the answer as variables', async () => {
    const state = await run(
      {
        request: { url: `${base}/users/{request.header.x-user}?q={request.header.x-q}`, headers: { 'x-tenant': '{request.header.x-tenant}' }, body: { user: '{request.header.x-user}', n: 1 } },
        response: 'callout.user',
      },
      { headers: { 'x-user': 'a/b"c', 'x-q': 'x&y=1', 'x-tenant': 't1' } },
    );
    const call = seen.at(-1)!;
    assert.equal(call.method, 'POST');
    assert.equal(call.url, '/users/a%2Fb%22c?q=x%26y%3D1', 'values are URL-encoded: they cannot add path segments or parameters');
    assert.equal(call.headers['x-tenant'], 't1');
    assert.deepEqual(JSON.parse(call.body), { user: 'a/b"c', n: 1 });
    assert.equal(state.vars!.get('callout.user.status'), '200');
    assert.equal(state.vars!.get('callout.user.body.user.tier'), 'gold');
    assert.equal(state.vars!.get('callout.user.body.user.limits.1'), '20');
    assert.equal(state.vars!.get('callout.user.body.ok'), 'true');
  });

  test('a header given as {env} is sent with the variable\'s value, as it is (no template); an unset one fails the build', async () => {
    process.env.TOLLGATE_TEST_CRM_KEY = 'key-{not-a-variable}';
    try {
      await run({ request: { url: `${base}/text`, headers: { 'x-api-key': { env: 'TOLLGATE_TEST_CRM_KEY' } } } });
      assert.equal(seen.at(-1)!.headers['x-api-key'], 'key-{not-a-variable}');
    } finally {
      delete process.env.TOLLGATE_TEST_CRM_KEY;
    }
    assert.throws(() => local({ request: { url: `${base}/text`, headers: { 'x-api-key': { env: 'TOLLGATE_TEST_CRM_KEY' } } } }), /spec\.request\.headers\.x-api-key: environment variable TOLLGATE_TEST_CRM_KEY is not set/);
  });

  test('without a body it is a GET; the default prefix names the policy; text stays as content', async () => {
    const state = await run({ request: { url: `${base}/text` } });
    assert.equal(seen.at(-1)!.method, 'GET');
    assert.equal(state.vars!.get('servicecallout.c.response.content'), 'plain text');
  });

  // Specs are built when the test runs: the server's port is known only then.
  const faults: [name: string, spec: () => Record<string, unknown>, pattern: RegExp][] = [
    ['a non-2xx answer', () => ({ request: { url: `${base}/fail` } }), /answered 503/],
    ['no answer in time', () => ({ request: { url: `${base}/slow` }, timeout: '100ms' }), /within 100ms/],
    ['an answer over the size limit', () => ({ request: { url: `${base}/big` }, maxResponseBytes: 1000 }), /larger than 1000 bytes/],
    ['an unset URL variable', () => ({ request: { url: `${base}/{request.header.x-missing}` } }), /not set/],
    ['a connection refused', () => ({ request: { url: 'http://127.0.0.1:1/' } }), /the service could not be reached/],
  ];
  for (const [name, spec, pattern] of faults) test(`${name} → 500 ${F.executionFailed}`, () => assert.rejects(run(spec()), fault(pattern)));

  test('a variable whose value is a "." or ".." segment is refused: it would climb out of the template\'s path', async () => {
    const spec = { request: { url: `${base}/tenants/{request.header.x-tenant}/tier` } };
    const calls = seen.length;
    // Before: `..` called /tier (encodeURIComponent leaves dots alone).
    for (const tenant of ['..', '.']) await assert.rejects(run(spec, { headers: { 'x-tenant': tenant } }), fault(/"\." or "\.\." path segment/), tenant);
    assert.equal(seen.length, calls, 'nothing was called');
    await run(spec, { headers: { 'x-tenant': '...' } });
    assert.equal(seen.at(-1)!.url, '/tenants/.../tier', 'three dots are a name');
    await run(spec, { headers: { 'x-tenant': '%2e%2e' } });
    assert.equal(seen.at(-1)!.url, '/tenants/%252e%252e/tier', 'an escaped dot is a percent sign, escaped');
  });

  test('the status of a failed call is still recorded', async () => {
    const state: ApimState = {};
    await assert.rejects(Promise.resolve(local({ request: { url: `${base}/fail` } }).admit!(fakeContext(), state)));
    assert.equal(state.vars!.get('servicecallout.c.response.status'), '503');
  });
});

describe('destination guard', () => {
  const refusedAtLoad: [string, RegExp][] = [
    ['http://127.0.0.1:8080/x', /loopback/],
    ['http://[::1]/x', /loopback/],
    ['http://169.254.169.254/latest/meta-data', /link-local/],
    ['http://[fd00:ec2::254]/', /metadata/],
    ['http://10.1.2.3/', /private/],
    ['http://[::ffff:127.0.0.1]/', /loopback/],
  ];
  for (const [url, reason] of refusedAtLoad) {
    test(`a literal ${url} is refused at config load`, () => assert.throws(() => serviceCallout('c', { request: { url } }, deps), reason));
  }

  test('allowPrivateNetworks opens private ranges, never loopback or metadata', () => {
    serviceCallout('c', { request: { url: 'http://10.1.2.3/' }, allowPrivateNetworks: true }, deps);
    assert.throws(() => serviceCallout('c', { request: { url: 'http://169.254.169.254/' }, allowPrivateNetworks: true }, deps), /link-local/);
  });

  test('a templated address is checked at request time', async () => {
    const { lines, deps: logged } = loggedDeps();
    const policy = serviceCallout('c', { request: { url: 'http://{request.header.x-host}:9/' } }, logged);
    await assert.rejects(Promise.resolve(policy.admit!(fakeContext({ headers: { 'x-host': '127.0.0.1' } }), {})), fault(/destination refused/));
    assert.match(String(lines.at(-1)?.detail), /loopback/);
  });

  test('a name is checked after DNS resolution: localhost resolves to loopback and is refused', async () => {
    const port = new URL(base).port;
    const { lines, deps: logged } = loggedDeps();
    const policy = serviceCallout('c', { request: { url: `http://localhost:${port}/` } }, logged);
    await assert.rejects(Promise.resolve(policy.admit!(fakeContext(), {})), fault(/could not be reached/));
    assert.match(String(lines.at(-1)?.detail), /localhost is refused: .*loopback/);
    const allowed = serviceCallout('c', { request: { url: `http://localhost:${port}/` }, allowedHosts: ['localhost'] }, deps);
    await allowed.admit!(fakeContext(), {});
  });

  // Before: `localhost is refused: 127.0.0.1 is a loopback address`, `getaddrinfo ENOTFOUND metadata.google.internal`.
  // A refused name fails as a name that does not resolve: the client cannot tell which names exist inside.
  test('with a templated host, a fault tells the client neither what a name resolves to nor the resolver\'s error; the log does', async () => {
    const { lines, deps: logged } = loggedDeps();
    const policy = serviceCallout('c', { request: { url: 'http://{request.header.x-host}/x' } }, logged);
    const cases: [host: string, message: string, detail: RegExp][] = [
      ['localhost', 'the service could not be reached', /localhost is refused: .*loopback/],
      ['2130706433', 'destination refused', /127\.0\.0\.1 is a loopback address/],
      ['no-such-host.invalid', 'the service could not be reached', /getaddrinfo \w+ no-such-host\.invalid/],
    ];
    for (const [host, message, detail] of cases) {
      const err = await Promise.resolve(policy.admit!(fakeContext({ headers: { 'x-host': host } }), {})).then(() => assert.fail(`${host}: no fault`), (e: unknown) => e);
      assert.ok(err instanceof GatewayError, host);
      assert.equal(err.status, 500, host);
      assert.equal(err.code, F.executionFailed, host);
      assert.equal(err.message, `ServiceCallout failed: ${message}`, host);
      for (const format of ['openai', 'apigee'] as const) {
        assert.doesNotMatch(err.toResponse(format).body, /127\.0\.0\.1|::1|loopback|getaddrinfo|ENOTFOUND|EAI_AGAIN/, `${host} (${format})`);
      }
      const line = lines.at(-1)!;
      assert.equal(line.level, 40, `${host}: logged at warn`);
      assert.equal(line.requestId, 'test', host);
      assert.equal(line.policy, 'c', host);
      assert.match(String(line.detail), detail, host);
    }
  });

  const table: [address: string, allowPrivate: boolean, refused: boolean][] = [
    ['8.8.8.8', false, false],
    ['2001:4860:4860::8888', false, false],
    ['192.168.1.1', false, true],
    ['192.168.1.1', true, false],
    ['172.31.255.255', false, true],
    ['172.32.0.0', false, false],
    ['100.64.0.1', false, true],
    ['fc00::1', false, true],
    ['fe80::1', true, true],
    ['0.0.0.0', true, true],
    ['224.0.0.1', true, true],
  ];
  for (const [address, allowPrivate, refused] of table) {
    test(`${address}${allowPrivate ? ' (private allowed)' : ''} is ${refused ? 'refused' : 'allowed'}`, () => assert.equal(refusalOf(address, allowPrivate) !== null, refused));
  }
});

describe('config', () => {
  test('unknown variables, reserved response names and bad durations are refused', () => {
    assert.throws(() => serviceCallout('c', { request: { url: 'https://x.example/{request.nope}' } }, deps), /unknown variable/);
    assert.throws(() => serviceCallout('c', { request: { url: 'https://x.example/' }, response: 'request.header' }, deps), /not a flow variable name/);
    assert.throws(() => serviceCallout('c', { request: { url: 'https://x.example/' }, timeout: 'soon' }, deps), /duration/);
    assert.throws(() => serviceCallout('c', { request: { url: 'ftp://x.example/' } }, deps), /ftp/);
  });
});
