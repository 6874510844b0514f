// OpenAI's rate-limit headers: duration format, retry-after, and the tightest limit winning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatReset, retryLater, showRefundedTokens, showRequestLimit, showTokenLimit, showTokenRefusal } from './rate-limit-headers.js';
import { fakeContext } from './testing.js';
import type { ApimState } from './types.js';

test('formatReset writes Go-style durations as OpenAI does', () => {
  const cases: [number, string][] = [
    [0, '0ms'],
    [20, '20ms'],
    [999.2, '1s'],
    [1500, '1.5s'],
    [60_000, '1m0s'],
    [360_000, '6m0s'],
    [61_500, '1m1.5s'],
    [3_600_000, '1h0m0s'],
    [90_061_000, '25h1m1s'],
    [-5, '0ms'],
  ];
  for (const [ms, text] of cases) assert.equal(formatReset(ms), text, `${ms} ms`);
});

test('retry-after is whole seconds, at least 1, retry-after-ms the wait itself; a wait past a minute also tells SDKs not to wait it out', () => {
  const retryHeaders = (ms: number) => {
    const fault = retryLater('code', 'message', ms);
    assert.equal(fault.status, 429);
    return fault.headers;
  };
  assert.deepEqual(retryHeaders(0), { 'retry-after': '1', 'retry-after-ms': '1' });
  assert.deepEqual(retryHeaders(200), { 'retry-after': '1', 'retry-after-ms': '200' });
  assert.deepEqual(retryHeaders(1001), { 'retry-after': '2', 'retry-after-ms': '1001' });
  assert.deepEqual(retryHeaders(60_000), { 'retry-after': '60', 'retry-after-ms': '60000' });
  // Before: a spent hourly quota said only retry-after: 2429, and the OpenAI Node SDK slept that long, twice.
  assert.deepEqual(retryHeaders(2_429_000), { 'retry-after': '2429', 'x-should-retry': 'false' });
});

test('the limit with the least remaining is the one shown', () => {
  const ctx = fakeContext();
  const headers: Record<string, string> = ctx.responseHeaders;
  const state: ApimState = {};
  showRequestLimit(ctx, state, 100, 40, 1000);
  showRequestLimit(ctx, state, 10, 9, 2000);
  showRequestLimit(ctx, state, 1000, 500, 3000);
  assert.deepEqual({ ...headers }, { 'x-ratelimit-limit-requests': '10', 'x-ratelimit-remaining-requests': '9', 'x-ratelimit-reset-requests': '2s' });
  showTokenLimit(ctx, state, 5000, 4000, 60_000);
  assert.equal(headers['x-ratelimit-remaining-tokens'], '4000');
  assert.equal(headers['x-ratelimit-reset-tokens'], '1m0s');
});

test('refused after token quotas reserved: the headers show what is left once the reservations are given back', () => {
  const ctx = fakeContext();
  const headers: Record<string, string> = ctx.responseHeaders;
  const state: ApimState = {};
  showTokenLimit(ctx, state, 1000, 681, 60_000, 307);
  showTokenLimit(ctx, state, 5000, 700, 3_600_000, 307);
  assert.equal(headers['x-ratelimit-remaining-tokens'], '681');
  showRefundedTokens(ctx, state);
  // Before: 681, though the request never reached a model and its 307 tokens were refunded.
  assert.deepEqual([headers['x-ratelimit-limit-tokens'], headers['x-ratelimit-remaining-tokens'], headers['x-ratelimit-reset-tokens']], ['1000', '988', '1m0s']);
  const tight = fakeContext();
  const other: ApimState = {};
  // The tightest after the refunds may be another quota (a cap shrunk near the end of one reserved less there).
  showTokenLimit(tight, other, 1000, 100, 60_000, 600);
  showTokenLimit(tight, other, 800, 200, 1000, 300);
  assert.equal(tight.responseHeaders['x-ratelimit-remaining-tokens'], '100');
  showRefundedTokens(tight, other);
  assert.deepEqual([tight.responseHeaders['x-ratelimit-limit-tokens'], tight.responseHeaders['x-ratelimit-remaining-tokens']], ['800', '500']);
});

test('the token quota that refused shows, and no refund changes it (it reserved nothing)', () => {
  const ctx = fakeContext();
  const state: ApimState = {};
  showTokenLimit(ctx, state, 1000, 100, 60_000, 50);
  showTokenRefusal(ctx, state, 5000, 40, 120_000);
  showRefundedTokens(ctx, state);
  assert.deepEqual([ctx.responseHeaders['x-ratelimit-limit-tokens'], ctx.responseHeaders['x-ratelimit-remaining-tokens'], ctx.responseHeaders['x-ratelimit-reset-tokens']], ['5000', '40', '2m0s']);
});
