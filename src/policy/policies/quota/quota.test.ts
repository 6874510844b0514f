// Quota: windows (table-driven, injected clock), weights, identifiers, countOnly/enforceOnly, product quotas,
// headers and faults — on every counter store backend.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError } from '../../../gateway/errors.js';
import { MemoryCounterStore } from '../../../store/counters/memory.js';
import { describeOnCounterBackends } from '../../../store/counters/test-counter-stores.js';
import { MemoryIdentitySource } from '../../memory-identity.js';
import { MONDAY, TestClock, fakeContext, testClockCases, testDeps, unique, type ClockCase, type FakeRequest } from '../../testing.js';
import type { ApimState, Policy } from '../../types.js';
import { quotaSpec } from '../../../config/apim-kinds.js';
import { QUOTA_FAULTS, quota } from './quota.js';

const DAY = 86_400_000;

function isQuotaViolation(err: unknown): boolean {
  return err instanceof GatewayError && err.status === 429 && err.code === QUOTA_FAULTS.quotaViolation && err.type === 'rate_limit_error';
}

/** Whether the request was admitted, and the headers that say when to come back. */
async function answer(policy: Policy, req: FakeRequest = {}, state: ApimState = {}): Promise<{ ok: boolean; retryAfter?: string; reset?: string }> {
  const ctx = fakeContext(req);
  const reset = () => ctx.responseHeaders['x-ratelimit-reset-requests'] as string | undefined;
  try {
    await policy.admit!(ctx, state);
    return { ok: true, reset: reset() };
  } catch (err) {
    if (!isQuotaViolation(err)) throw err;
    return { ok: false, retryAfter: (err as GatewayError).headers['retry-after'], reset: reset() };
  }
}

async function allowed(policy: Policy, req: FakeRequest = {}, state: ApimState = {}): Promise<boolean> {
  return (await answer(policy, req, state)).ok;
}

describe('config', () => {
  const deps = testDeps(new MemoryCounterStore());
  const bad: [name: string, spec: unknown, message: RegExp][] = [
    ['no allow', { timeUnit: 'minute' }, /allow \(or limit\) is required/],
    ['no timeUnit', { allow: 5 }, /timeUnit is required/],
    ['allow and limit', { allow: 5, limit: 5, timeUnit: 'minute' }, /not both/],
    ['calendar without startTime', { allow: 5, timeUnit: 'minute', type: 'calendar' }, /needs a startTime/],
    ['startTime without calendar', { allow: 5, timeUnit: 'minute', startTime: '2025-01-01T00:00:00Z' }, /calendar quotas only/],
    ['countOnly and enforceOnly', { allow: 5, timeUnit: 'minute', countOnly: true, enforceOnly: true }, /exclude each other/],
    ['product config with its own allow', { useQuotaConfigInAPIProduct: true, allow: 5 }, /leave allow, limit and timeUnit out/],
    ['product config on a calendar', { useQuotaConfigInAPIProduct: true, type: 'calendar', startTime: '2025-01-01T00:00:00Z' }, /calendar-aligned already/],
    ['a zero allow', { allow: 0, timeUnit: 'minute' }, /Too small|>0/],
    ['an unknown time unit', { allow: 5, timeUnit: 'year' }, /Invalid option/],
    ['an unknown identifier', { allow: 5, timeUnit: 'minute', identifier: { ref: 'who' } }, /unknown variable "who"/],
    // Before: accepted, then every request failed with a RangeError from the counter store.
    ['an interval past the range of dates', { allow: 5, interval: 1_000_000_000, timeUnit: 'day' }, /at most 100000/],
    ['a startTime that is no date', { allow: 5, timeUnit: 'day', type: 'calendar', startTime: '2025-02-31T00:00:00Z' }, /must be a date and time/],
    ['a startTime in words', { allow: 5, timeUnit: 'day', type: 'calendar', startTime: 'March 7, 2025' }, /must be a date and time/],
  ];
  for (const [name, spec, message] of bad) test(name, () => assert.throws(() => quota('q', spec, deps), message));

  test('a startTime without a zone is UTC, whatever the process\'s time zone (Apigee\'s own form too)', (t) => {
    const tz = process.env.TZ;
    // Node reads TZ again when it is set: a replica in India must count the same windows as one in UTC.
    process.env.TZ = 'Asia/Kolkata';
    t.after(() => (tz === undefined ? delete process.env.TZ : (process.env.TZ = tz)));
    for (const startTime of ['2025-06-01T09:30:00', '2025-6-1 09:30:00', '2025-06-01T11:30:00+02:00']) {
      const parsed = quotaSpec.parse({ allow: 5, timeUnit: 'day', type: 'calendar', startTime });
      assert.equal(Date.parse(parsed.startTime!), Date.UTC(2025, 5, 1, 9, 30), startTime);
      assert.deepEqual(quotaSpec.parse(parsed), parsed, 'a parsed spec parses again to itself');
    }
  });

  test('allow as Apigee\'s {count}, limit as a synonym', () => {
    assert.equal(quota('a', { allow: { count: 3 }, timeUnit: 'hour' }, deps).type, 'quota');
    assert.equal(quota('b', { limit: 3, timeUnit: 'hour' }, deps).name, 'b');
  });
});

describeOnCounterBackends((counters, replica) => {

  const make = (spec: Record<string, unknown>, clock: TestClock) => quota(unique('q'), spec, testDeps(counters(), { now: clock.now }));

  describe('windows', () => {
    const cases: ClockCase[] = [
      { name: 'top of the minute', spec: { allow: 2, timeUnit: 'minute' }, steps: [[0, true], [10_000, true], [59_999, false], [60_000, true]] },
      { name: 'a 2-minute interval', spec: { allow: 1, interval: 2, timeUnit: 'minute' }, steps: [[0, true], [60_000, false], [119_999, false], [120_000, true]] },
      { name: 'rolling window', spec: { allow: 2, timeUnit: 'minute', type: 'rollingwindow' }, steps: [[0, true], [30_000, true], [59_000, false], [60_100, true], [60_200, false], [90_100, true]] },
      { name: 'flexi: from the first request', spec: { allow: 2, timeUnit: 'minute', type: 'flexi' }, steps: [[20_000, true], [30_000, true], [70_000, false], [80_000, true]] },
      { name: 'calendar from a startTime', spec: { allow: 2, timeUnit: 'minute', type: 'calendar', startTime: new Date(MONDAY + 30_000).toISOString() }, steps: [[0, true], [10_000, true], [20_000, false], [30_000, true]] },
      { name: 'week from Monday', spec: { allow: 1, timeUnit: 'week' }, steps: [[0, true], [6 * DAY, false], [7 * DAY, true]] },
      // 2 June to 1 July.
      { name: 'calendar month', spec: { allow: 1, timeUnit: 'month' }, steps: [[0, true], [29 * DAY - 1, false], [29 * DAY, true]] },
    ];
    testClockCases(cases, make, (policy) => allowed(policy));
  });

  test('a refusal is 429 with retry-after and the rate-limit headers', async () => {
    const clock = new TestClock(MONDAY + 15_000);
    const policy = make({ allow: 2, timeUnit: 'minute' }, clock);
    const first = fakeContext();
    await policy.admit!(first, {});
    assert.deepEqual(first.responseHeaders, { 'x-ratelimit-limit-requests': '2', 'x-ratelimit-remaining-requests': '1', 'x-ratelimit-reset-requests': '45s' });
    await policy.admit!(fakeContext(), {});
    const refused = fakeContext();
    await assert.rejects(async () => policy.admit!(refused, {}), (err: GatewayError) => {
      assert.ok(isQuotaViolation(err));
      assert.equal(err.headers['retry-after'], '45');
      assert.match(err.message, /Identifier : _default/);
      return true;
    });
    assert.equal(refused.responseHeaders['x-ratelimit-remaining-requests'], '0');
  });

  test('a rolling window refuses a weighted request until it fits, and retry-after says when that is', async () => {
    const clock = new TestClock(MONDAY);
    const policy = make({ allow: 10, timeUnit: 'hour', type: 'rollingwindow', messageWeight: { ref: 'request.header.x-weight' } }, clock);
    const weight = (w: number) => ({ headers: { 'x-weight': String(w) } });
    assert.equal(await allowed(policy, weight(1)), true);
    clock.advance(50 * 60_000);
    assert.equal(await allowed(policy, weight(9)), true);
    let retryAfter = 0;
    await assert.rejects(async () => policy.admit!(fakeContext(weight(5)), {}), (err: GatewayError) => {
      assert.ok(isQuotaViolation(err));
      retryAfter = Number(err.headers['retry-after']);
      return true;
    });
    // Before: 604 s, when the request of weight 1 left, which frees too little: refused again then.
    assert.equal(retryAfter, 3603, 'until the request of weight 9 has left too');
    clock.advance(retryAfter * 1000);
    assert.equal(await allowed(policy, weight(5)), true);
  });

  test('the identifier gives each value its own counter', async () => {
    const clock = new TestClock(MONDAY);
    const policy = make({ allow: 1, timeUnit: 'hour', identifier: { ref: 'request.header.x-tenant' } }, clock);
    assert.equal(await allowed(policy, { headers: { 'x-tenant': 'a' } }), true);
    assert.equal(await allowed(policy, { headers: { 'x-tenant': 'b' } }), true);
    assert.equal(await allowed(policy, { headers: { 'x-tenant': 'a' } }), false);
  });

  test('messageWeight counts a request as several', async () => {
    const clock = new TestClock(MONDAY);
    const policy = make({ allow: 10, timeUnit: 'hour', messageWeight: { ref: 'request.header.x-weight' } }, clock);
    assert.equal(await allowed(policy, { headers: { 'x-weight': '6' } }), true);
    assert.equal(await allowed(policy, { headers: { 'x-weight': '5' } }), false);
    assert.equal(await allowed(policy, { headers: { 'x-weight': '4' } }), true);
    assert.equal(await allowed(policy), false);
  });

  test('a weight above the whole allowance is refused as never fitting, and not counted', async () => {
    const clock = new TestClock(MONDAY);
    for (const type of [undefined, 'rollingwindow', 'flexi']) {
      const policy = make({ allow: 5, timeUnit: 'hour', type, messageWeight: { ref: 'request.header.x-weight' } }, clock);
      await assert.rejects(async () => policy.admit!(fakeContext({ headers: { 'x-weight': '6' } }), {}), (err: GatewayError) => {
        assert.equal(err.code, QUOTA_FAULTS.quotaViolation);
        // Before: retry-after 1 on a rolling window, the window's end on the others, for a request that can never pass.
        assert.equal(err.headers['retry-after'], undefined, String(type));
        assert.equal(err.headers['x-should-retry'], 'false');
        return true;
      });
      assert.equal(await allowed(policy, { headers: { 'x-weight': '5' } }), true, `${type}: the refused weight took nothing`);
    }
  });

  test('a weight that is not plain decimal digits counts as 1 (before: 0x9 counted 9, 1e1 ten)', async () => {
    const clock = new TestClock(MONDAY);
    const policy = make({ allow: 3, timeUnit: 'hour', messageWeight: { ref: 'request.header.x-weight' } }, clock);
    for (const weight of ['0x9', '1e1', ' 9']) assert.equal(await allowed(policy, { headers: { 'x-weight': weight } }), true, weight);
    assert.equal(await allowed(policy), false, 'three requests of weight 1');
  });

  test('enforceOnly checks and countOnly counts one shared counter', async () => {
    const clock = new TestClock(MONDAY);
    const shared = unique('shared');
    const deps = testDeps(counters(), { now: clock.now });
    const enforce = quota('enforce', { allow: 3, timeUnit: 'hour', sharedName: shared, enforceOnly: true }, deps);
    const count = quota('count', { allow: 3, timeUnit: 'hour', sharedName: shared, countOnly: true, messageWeight: { ref: 'request.header.x-used' } }, deps);
    assert.equal(await allowed(enforce), true);
    assert.equal(await allowed(enforce), true, 'enforcing alone counts nothing');
    assert.equal(await allowed(count, { headers: { 'x-used': '2' } }), true);
    assert.equal(await allowed(enforce), true);
    assert.equal(await allowed(count, { headers: { 'x-used': '2' } }), true, 'counting never refuses');
    assert.equal(await allowed(enforce), false);
  });

  test('enforceOnly on a rolling window: retry-after says when the weighted request fits, as a counting policy does', async () => {
    const clock = new TestClock(MONDAY);
    const shared = unique('shared');
    const deps = testDeps(counters(), { now: clock.now });
    const weight = { ref: 'request.header.x-weight' };
    const enforce = quota('enforce', { allow: 10, timeUnit: 'minute', type: 'rollingwindow', sharedName: shared, enforceOnly: true, messageWeight: weight }, deps);
    const count = quota('count', { allow: 10, timeUnit: 'minute', type: 'rollingwindow', sharedName: shared, countOnly: true, messageWeight: weight }, deps);
    const weighing = (w: number) => ({ headers: { 'x-weight': String(w) } });
    // Before: 0ms, the store's date for an empty window.
    assert.equal((await answer(enforce)).reset, '1m0s', 'an empty window: one period from now, when this request would leave it');
    await allowed(count, weighing(1));
    clock.advance(30_000);
    await allowed(count, weighing(8));
    clock.advance(1_000);
    const refused = await answer(enforce, weighing(5));
    // Before: 30, when the request of weight 1 left, which frees too little: refused again then.
    assert.deepEqual(refused, { ok: false, retryAfter: '60', reset: '59.059s' }, 'until the 8 have left too');
    clock.advance(Number(refused.retryAfter) * 1000);
    assert.equal(await allowed(enforce, weighing(5)), true);
  });

  test('countOnly on a flexi window says when the window opened by the first request ends', async () => {
    const clock = new TestClock(MONDAY);
    const shared = unique('shared');
    const deps = testDeps(counters(), { now: clock.now });
    const enforce = quota('enforce', { allow: 10, timeUnit: 'hour', type: 'flexi', sharedName: shared, enforceOnly: true }, deps);
    const count = quota('count', { allow: 10, timeUnit: 'hour', type: 'flexi', sharedName: shared, countOnly: true }, deps);
    assert.equal((await answer(count)).reset, '1h0m0s');
    clock.advance(45 * 60_000);
    // Before: 1h0m0s, a whole period from now, whatever the window.
    assert.equal((await answer(count)).reset, '15m0s');
    assert.equal((await answer(enforce)).reset, '15m0s', 'as the enforcing policy on the same counter says');
  });

  test('a sharedName with a colon is no other Quota\'s counter', async () => {
    const clock = new TestClock(MONDAY);
    const deps = testDeps(counters(), { now: clock.now });
    const users = unique('users');
    const budget = quota(unique('tenant-budget'), { allow: 2, timeUnit: 'hour', sharedName: `${users}:budget`, identifier: { ref: 'request.header.x-tenant' } }, deps);
    const perUser = quota(users, { allow: 1000, timeUnit: 'hour', identifier: { ref: 'request.header.x-user' } }, deps);
    assert.equal(await allowed(perUser, { headers: { 'x-user': 'budget:acme' } }), true);
    assert.equal(await allowed(perUser, { headers: { 'x-user': 'budget:acme' } }), true);
    // Before: 429, both counted on apim:q:<users>:budget:acme: any client could spend tenant acme's budget.
    assert.equal(await allowed(budget, { headers: { 'x-tenant': 'acme' } }), true, "tenant acme's first request");
  });

  test('product quotas counted per different identifiers never share a counter', async () => {
    const clock = new TestClock(MONDAY);
    const identity = new MemoryIdentitySource([{ name: unique('set'), spec: { apiProductRefs: [{ name: 'p' }], quota: { limit: 1, interval: 1, timeUnit: 'hour' } } }]);
    const app = identity.add({ key: 'k', appId: unique('app'), products: ['p'] });
    const deps = testDeps(counters(), { now: clock.now, identity });
    const perApp = quota(unique('product'), { useQuotaConfigInAPIProduct: true }, deps);
    const perUser = quota(unique('product-per-user'), { useQuotaConfigInAPIProduct: true, identifier: { ref: 'request.header.x-user' } }, deps);
    const state: ApimState = { key: app, product: app.products[0], operationSet: app.products[0].operationSets[0] };
    assert.equal(await allowed(perUser, { headers: { 'x-user': app.appId } }, state), true);
    // Before: 429, the header's value counted on the app's counter.
    assert.equal(await allowed(perApp, {}, state), true, "the app's own first request");
    assert.equal(await allowed(quota(unique('default-product-quota'), { useQuotaConfigInAPIProduct: true }, deps), {}, state), false, 'the same variable, the same counter');
  });

  describe('a changed interval or time unit starts a new counter (an edited or reloaded Quota)', () => {
    const make = (name: string, spec: Record<string, unknown>, clock: TestClock, store = counters()) => quota(name, spec, testDeps(store, { now: clock.now }));

    test('flexi: 5 a day used up, then 5 a minute: refused for a minute at most, not for the rest of the day', async () => {
      const clock = new TestClock(MONDAY);
      const name = unique('q');
      const daily = make(name, { allow: 5, timeUnit: 'day', type: 'flexi' }, clock);
      for (let i = 0; i < 5; i++) assert.equal(await allowed(daily), true);
      clock.advance(3_600_000);
      const perMinute = make(name, { allow: 5, timeUnit: 'minute', type: 'flexi' }, clock);
      // Before: refused with retry-after 82800, the day's window and its end kept.
      for (let i = 0; i < 5; i++) assert.equal(await allowed(perMinute), true, `request ${i + 1}`);
      assert.deepEqual(await answer(perMinute), { ok: false, retryAfter: '60', reset: '1m0s' });
    });

    test('fixed: 3 an hour used up, then 3 a minute from the same instant: a new minute, not the hour\'s end', async () => {
      const clock = new TestClock(MONDAY + 30_000);
      const name = unique('q');
      const hourly = make(name, { allow: 3, timeUnit: 'hour' }, clock);
      for (let i = 0; i < 3; i++) assert.equal(await allowed(hourly), true);
      const perMinute = make(name, { allow: 3, timeUnit: 'minute' }, clock);
      // Before: refused with retry-after 3570: the minute starting at the top of the hour shared the hour's counter.
      for (let i = 0; i < 3; i++) assert.equal(await allowed(perMinute), true, `request ${i + 1}`);
      assert.deepEqual(await answer(perMinute), { ok: false, retryAfter: '30', reset: '30s' });
    });

    test('fixed: 3 a minute used up, then 3 an hour from the same instant: the hour counts 3 and says when it ends', async () => {
      const clock = new TestClock(MONDAY + 1_000);
      const name = unique('q');
      const perMinute = make(name, { allow: 3, timeUnit: 'minute' }, clock);
      for (let i = 0; i < 3; i++) assert.equal(await allowed(perMinute), true);
      clock.advance(1_000);
      const hourly = make(name, { allow: 3, timeUnit: 'hour' }, clock);
      // Before: refused (reset in 58 s), then, once the minute ended, the hour's counter began again from 0 at 0:01.
      for (let i = 0; i < 3; i++) assert.equal(await allowed(hourly), true, `request ${i + 1}`);
      assert.deepEqual(await answer(hourly), { ok: false, retryAfter: '3598', reset: '59m58s' });
      clock.advance(60_000);
      assert.equal(await allowed(hourly), false, 'the minute the old counter ended changes nothing');
    });

    for (const type of [undefined, 'flexi', 'rollingwindow']) {
      test(`${type ?? 'fixed'}: two replicas counting at once on the new window admit exactly its allowance`, async () => {
        const clock = new TestClock(MONDAY);
        const name = unique('q');
        const daily = make(name, { allow: 5, timeUnit: 'day', type }, clock);
        for (let i = 0; i < 5; i++) assert.equal(await allowed(daily), true);
        const other = await replica();
        const [a, b] = [make(name, { allow: 5, timeUnit: 'minute', type }, clock), make(name, { allow: 5, timeUnit: 'minute', type }, clock, other)];
        const outcomes = await Promise.all(Array.from({ length: 40 }, (_, i) => allowed(i % 2 === 0 ? a : b)));
        // Before: none, the day's count (or history) was the minute's too.
        assert.equal(outcomes.filter(Boolean).length, 5);
        clock.advance(30_000);
        assert.deepEqual([await allowed(a), await allowed(b)], [false, false]);
      });
    }
  });

  describe('usage (the quota report) reads what admit counts, and counts nothing', () => {
    const types = [{}, { type: 'rollingwindow' }, { type: 'flexi' }, { type: 'calendar', startTime: new Date(MONDAY - 30_000).toISOString() }];
    for (const extra of types) {
      test(String(extra.type ?? 'calendar-aligned'), async () => {
        const clock = new TestClock(MONDAY + 10_000);
        const policy = make({ allow: 3, timeUnit: 'minute', ...extra }, clock);
        const read = async () => (await policy.usage!(fakeContext(), {}))!;
        assert.equal((await read()).used, 0);
        clock.advance(1_000);
        assert.equal(await allowed(policy), true);
        assert.equal(await allowed(policy), true);
        const u = await read();
        assert.deepEqual({ used: u.used, remaining: u.remaining, window: u.window }, { used: 2, remaining: 1, window: extra.type === 'calendar' ? 'fixed' : (extra.type ?? 'fixed') });
        assert.equal((await read()).used, 2);
        assert.equal(await allowed(policy), true, 'reading left room for the third');
        assert.equal(await allowed(policy), false);
      });
    }

    test('a rolling window nothing is counted in resets at the latest it can, one period from now', async () => {
      const clock = new TestClock(MONDAY + 10_000);
      const policy = make({ allow: 3, timeUnit: 'minute', type: 'rollingwindow' }, clock);
      // Before: the report's own time.
      assert.equal((await policy.usage!(fakeContext(), {}))!.resetAt, new Date(MONDAY + 70_000).toISOString());
    });

    test('an enforceOnly policy reads the counter its countOnly partner counts', async () => {
      const clock = new TestClock(MONDAY);
      const shared = unique('shared');
      const deps = testDeps(counters(), { now: clock.now });
      const enforce = quota('enforce', { allow: 3, timeUnit: 'hour', sharedName: shared, enforceOnly: true }, deps);
      const count = quota('count', { allow: 3, timeUnit: 'hour', sharedName: shared, countOnly: true }, deps);
      await allowed(count);
      await allowed(count);
      assert.equal((await enforce.usage!(fakeContext(), {}))!.used, 2);
    });
  });

  test('useQuotaConfigInAPIProduct counts per app and operation set', async () => {
    const clock = new TestClock(MONDAY);
    const identity = new MemoryIdentitySource([
      { name: unique('small'), spec: { apiProductRefs: [{ name: 'p' }], quota: { limit: 1, interval: 1, timeUnit: 'minute' }, llmOperations: { models: ['small'] } } },
      { name: unique('large'), spec: { apiProductRefs: [{ name: 'p' }], quota: { limit: 2, interval: 1, timeUnit: 'minute' } } },
      { name: unique('free'), spec: { apiProductRefs: [{ name: 'free' }] } },
    ]);
    const app1 = identity.add({ key: 'k1', appId: unique('app'), products: ['p', 'free'] });
    const app2 = identity.add({ key: 'k2', appId: unique('app'), products: ['p'] });
    const policy = quota(unique('product'), { useQuotaConfigInAPIProduct: true }, testDeps(counters(), { now: clock.now, identity }));
    assert.equal(policy.needsApiKey, true);
    const [small, large] = app1.products[0].operationSets;
    const state = (key: typeof app1, set: typeof small): ApimState => ({ key, product: key.products[0], operationSet: set });
    assert.equal(await allowed(policy, {}, state(app1, small)), true);
    assert.equal(await allowed(policy, {}, state(app1, small)), false);
    assert.equal(await allowed(policy, {}, state(app2, small)), true, 'another app has its own counter');
    assert.equal(await allowed(policy, {}, state(app1, large)), true, 'another operation set has its own counter');
    assert.equal(await allowed(policy, {}, state(app1, large)), true);
    assert.equal(await allowed(policy, {}, state(app1, large)), false);
    assert.equal(await allowed(policy, {}, state(app1, app1.products[1].operationSets[0])), true, 'a set without a quota is not limited');
  });
});
