// TokenInjection: a static secret from the environment, and client-credentials tokens — single-flight fetches,
// refresh before expiry, a still-valid token kept when a refresh fails, and the fault when there is none.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { GatewayError } from '../../../gateway/errors.js';
import type { Logger } from '../../../lib/logger.js';
import { captureLogger } from '../../../scheduler/testing.js';
import { MemoryCounterStore } from '../../../store/counters/memory.js';
import { waitFor } from '../../../sim/testing.js';
import { TestClock, fakeContext, testDeps } from '../../testing.js';
import type { Policy } from '../../types.js';
import { TOKEN_INJECTION_FAULTS as F, tokenInjection } from './token-injection.js';

const NOW = Date.parse('2025-06-02T12:00:00Z');
process.env.TOLLGATE_TEST_UPSTREAM_KEY = 'sk-upstream-123';
process.env.TOLLGATE_TEST_CLIENT_SECRET = 's3cr3t:with/odd chars';

async function header(policy: Policy, name = 'authorization'): Promise<string | null | undefined> {
  const ctx = fakeContext();
  await policy.admit!(ctx, {});
  return ctx.upstreamHeaders?.[name];
}

describe('static secret', () => {
  const deps = testDeps(new MemoryCounterStore());
  test('Authorization: Bearer by default; another header without a prefix', async () => {
    assert.equal(await header(tokenInjection('t', { secret: { env: 'TOLLGATE_TEST_UPSTREAM_KEY' } }, deps)), 'Bearer sk-upstream-123');
    assert.equal(await header(tokenInjection('t', { secret: { env: 'TOLLGATE_TEST_UPSTREAM_KEY' }, header: 'X-Api-Key' }, deps), 'x-api-key'), 'sk-upstream-123');
  });
  test('a variable ending in a line break (a Secret made --from-file) is sent without it; an inner one is a config error naming the variable', async () => {
    // Before: `serve` started, and every request was a 400 blaming the client (the header could not be sent).
    process.env.TOLLGATE_TEST_NEWLINE_KEY = 'k\n';
    process.env.TOLLGATE_TEST_SPLIT_KEY = 'k\nx-injected: 1';
    try {
      assert.equal(await header(tokenInjection('t', { secret: { env: 'TOLLGATE_TEST_NEWLINE_KEY' } }, deps)), 'Bearer k');
      assert.throws(() => tokenInjection('t', { secret: { env: 'TOLLGATE_TEST_SPLIT_KEY' } }, deps), /^Error: spec\.secret: environment variable TOLLGATE_TEST_SPLIT_KEY must not hold control characters/);
    } finally {
      delete process.env.TOLLGATE_TEST_NEWLINE_KEY;
      delete process.env.TOLLGATE_TEST_SPLIT_KEY;
    }
  });
  test('an unset variable, or neither or both sources, are config errors', () => {
    assert.throws(() => tokenInjection('t', { secret: { env: 'TOLLGATE_TEST_NOT_SET' } }, deps), /TOLLGATE_TEST_NOT_SET is not set/);
    assert.throws(() => tokenInjection('t', {}, deps), /exactly one/);
    assert.throws(() => tokenInjection('t', { secret: { value: 'inline' } }, deps), /env/);
  });
});

describe('client credentials', () => {
  let server: Server;
  let tokenUrl: string;
  let calls: { headers: IncomingMessage['headers']; body: string }[] = [];
  let answer: () => { status: number; body: unknown; delayMs?: number };
  let issued = 0;

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        calls.push({ headers: req.headers, body });
        const a = answer();
        setTimeout(() => {
          res.writeHead(a.status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(a.body));
        }, a.delayMs ?? 0);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    tokenUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/token`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));
  beforeEach(() => {
    calls = [];
    answer = () => ({ status: 200, body: { access_token: `tok-${++issued}`, expires_in: 120, token_type: 'Bearer' }, delayMs: 20 });
  });

  const make = (clock: TestClock, extra: Record<string, unknown> = {}, logger?: Logger) =>
    tokenInjection(
      't',
      { clientCredentials: { tokenUrl, clientId: { value: 'gateway' }, clientSecret: { env: 'TOLLGATE_TEST_CLIENT_SECRET' }, scope: 'models', ...extra } },
      { ...testDeps(new MemoryCounterStore(), { now: clock.now }), logger },
    );

  test('concurrent requests share one fetch; HTTP Basic carries the form-encoded credentials', async () => {
    const policy = make(new TestClock(NOW));
    const values = await Promise.all([1, 2, 3, 4, 5].map(() => header(policy)));
    assert.equal(calls.length, 1);
    assert.equal(new Set(values).size, 1);
    assert.match(values[0]!, /^Bearer tok-\d+$/);
    const basic = Buffer.from(calls[0].headers.authorization!.slice(6), 'base64').toString();
    assert.equal(basic, `gateway:${encodeURIComponent('s3cr3t:with/odd chars')}`);
    assert.equal(new URLSearchParams(calls[0].body).get('scope'), 'models');
  });

  test('authMethod body sends the credentials as form fields', async () => {
    await header(make(new TestClock(NOW), { authMethod: 'body' }));
    const form = new URLSearchParams(calls[0].body);
    assert.equal(form.get('client_secret'), 's3cr3t:with/odd chars');
    assert.equal(calls[0].headers.authorization, undefined);
  });

  test('the token is reused, refreshed in the background before it expires, then replaced', async () => {
    const clock = new TestClock(NOW);
    const policy = make(clock, { refreshBefore: '60s' });
    const first = await header(policy);
    clock.advance(30_000);
    assert.equal(await header(policy), first);
    assert.equal(calls.length, 1);
    clock.advance(40_000); // 50 s left: inside refreshBefore
    assert.equal(await header(policy), first, 'the current token is used while the new one is fetched');
    // The refresh is not awaited by anyone: wait for the new token instead of guessing how long the fetch takes.
    await waitFor(async () => (await header(policy)) !== first, 5000, 'the refreshed token');
    assert.equal(calls.length, 2, 'one refresh, however many requests came while it was on its way');
  });

  // A token living no longer than refreshBefore was due for refresh as soon as it arrived: every request fetched another.
  for (const [lifetime, refreshBefore] of [
    [30, '60s'],
    [60, '60s'],
    [120, '5m'],
  ] as const) {
    test(`a ${lifetime}s token with refreshBefore ${refreshBefore} is refreshed once, half its lifetime ahead, not at every request`, async () => {
      answer = () => ({ status: 200, body: { access_token: `tok-${++issued}`, expires_in: lifetime }, delayMs: 20 });
      const clock = new TestClock(NOW);
      const policy = make(clock, { refreshBefore });
      const first = await header(policy);
      for (let i = 0; i < 5; i++) {
        clock.advance(1000);
        assert.equal(await header(policy), first);
        await new Promise((r) => setTimeout(r, 30)); // longer than a fetch takes: a refresh started would be seen
      }
      assert.equal(calls.length, 1, 'no refresh in the first half of the lifetime');
      clock.advance((lifetime / 2) * 1000 - 5000); // half the lifetime left
      assert.equal(await header(policy), first);
      await waitFor(async () => (await header(policy)) !== first, 5000, 'the refreshed token');
      assert.equal(calls.length, 2);
    });
  }

  test('a token response larger than 64 KiB is refused, not held', async () => {
    answer = () => ({ status: 200, body: { access_token: 'x'.repeat(70_000), expires_in: 120 } });
    await assert.rejects(header(make(new TestClock(NOW))), (err: GatewayError) => {
      assert.equal(err.code, F.tokenFetchFailed);
      assert.match(err.message, /the token endpoint answered more than 65536 bytes/);
      return true;
    });
  });

  test('a failed refresh keeps the still-valid token; once it has expired the request faults', async () => {
    const clock = new TestClock(NOW);
    const policy = make(clock, { retryAfterFailure: '5s' });
    const first = await header(policy);
    answer = () => ({ status: 503, body: { error: 'temporarily_unavailable' } });
    clock.advance(100_000);
    assert.equal(await header(policy), first);
    await new Promise((r) => setTimeout(r, 30));
    clock.advance(30_000);
    await assert.rejects(header(policy), (err: GatewayError) => {
      assert.equal(err.code, F.tokenFetchFailed);
      assert.equal(err.status, 500);
      assert.ok(!err.message.includes('s3cr3t'), 'the fault never carries the secret');
      return true;
    });
  });

  test('after a failure, requests fail at once for retryAfterFailure instead of hammering the endpoint', async () => {
    const clock = new TestClock(NOW);
    answer = () => ({ status: 500, body: {} });
    const policy = make(clock, { retryAfterFailure: '5s' });
    await assert.rejects(header(policy));
    await assert.rejects(header(policy));
    assert.equal(calls.length, 1);
    clock.advance(5000);
    answer = () => ({ status: 200, body: { access_token: 'recovered', expires_in: 60 } });
    assert.equal(await header(policy), 'Bearer recovered');
  });

  // Sent, such a token made every request a 400 blaming the client, and it stayed cached for its whole lifetime.
  for (const [what, token] of [
    ['a line break', 'issued-T0K\r\nx-injected: 1'],
    ['a character past U+00FF', 'issued-T0K-€'],
  ] as const) {
    test(`an access_token holding ${what} is a failed fetch (500 TokenFetchFailed), not cached: fetched again after retryAfterFailure`, async () => {
      const clock = new TestClock(NOW);
      answer = () => ({ status: 200, body: { access_token: calls.length === 1 ? token : 'good', expires_in: 3600 } });
      const policy = make(clock, { retryAfterFailure: '1s' });
      await assert.rejects(header(policy), (err: GatewayError) => {
        assert.equal(err.code, F.tokenFetchFailed);
        assert.equal(err.status, 500);
        assert.match(err.message, /access_token unfit for a header/);
        assert.ok(!err.message.includes('T0K'), 'the fault never carries the token');
        return true;
      });
      clock.advance(1000);
      assert.equal(await header(policy), 'Bearer good');
      assert.equal(calls.length, 2);
    });
  }

  test('expires_in as a numeric string ("2", as some IdPs send it) is the lifetime: the token is replaced once it expires', async () => {
    // Before: ignored for the 300 s default, so a token the IdP said had expired was still sent.
    answer = () => ({ status: 200, body: { access_token: `tok-${++issued}`, expires_in: '2' } });
    const clock = new TestClock(NOW);
    const policy = make(clock);
    const first = await header(policy);
    clock.advance(2000);
    assert.notEqual(await header(policy), first);
    assert.equal(calls.length, 2);
  });

  test('a failed fetch or refresh is logged at warn once per outage, with the status and OAuth error code, never the secret or a token; the recovery once', async () => {
    const { logger, lines } = captureLogger();
    const clock = new TestClock(NOW);
    const policy = make(clock, { retryAfterFailure: '1s' }, logger);
    const first = await header(policy);
    answer = () => ({ status: 401, body: { error: 'invalid_client', error_description: 'client secret expired' } });
    clock.advance(100_000); // inside refreshBefore: a background refresh, which fails
    assert.equal(await header(policy), first);
    await waitFor(() => lines.length > 0, 5000, 'the failed refresh logged');
    const refresh = lines[0];
    assert.equal(refresh.level, 40);
    assert.equal(refresh.tokenUrl, tokenUrl);
    assert.match(String(refresh.reason), /answered 401/);
    assert.equal(refresh.idpError, 'invalid_client');
    assert.equal(refresh.tokenExpiresAt, new Date(NOW + 120_000).toISOString(), 'says until when the token held is used');
    assert.match(String(refresh.msg), /cannot be refreshed/);
    clock.advance(30_000); // the token has expired: requests fail, retrying every second
    for (let i = 0; i < 3; i++, clock.advance(1000)) await assert.rejects(header(policy));
    assert.equal(calls.length, 5, 'the refresh, then a fetch every retryAfterFailure');
    assert.equal(lines.length, 2, 'logged again once the token held has expired, not at every retry');
    assert.match(String(lines[1].msg), /no upstream token can be fetched/);
    assert.equal(lines[1].idpError, 'invalid_client');
    answer = () => ({ status: 503, body: { error: 'temporarily_unavailable' } });
    await assert.rejects(header(policy));
    assert.equal(lines.length, 3, 'a new reason is logged');
    assert.equal(lines[2].idpError, 'temporarily_unavailable');
    clock.advance(1000);
    answer = () => ({ status: 200, body: { access_token: 'recovered', expires_in: 60 } });
    assert.equal(await header(policy), 'Bearer recovered');
    assert.equal(lines.length, 4);
    assert.equal(lines[3].level, 30);
    assert.match(String(lines[3].msg), /answers again/);
    const logged = JSON.stringify(lines);
    for (const secret of ['s3cr3t', first!.slice('Bearer '.length), 'recovered', 'client secret expired']) assert.ok(!logged.includes(secret), `the log never carries ${secret}`);
  });
});
