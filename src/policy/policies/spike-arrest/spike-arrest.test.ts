// SpikeArrest: smoothing (5ps is one per 200 ms), useEffectiveCount's sliding window, identifiers, weights, faults — on every backend.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ZodError } from 'zod';
import { GatewayError } from '../../../gateway/errors.js';
import { MemoryCounterStore } from '../../../store/counters/memory.js';
import { describeOnCounterBackends } from '../../../store/counters/test-counter-stores.js';
import { MONDAY, TestClock, fakeContext, testClockCases, testDeps, unique, type ClockCase, type FakeRequest } from '../../testing.js';
import type { Policy } from '../../types.js';
import { SPIKE_ARREST_FAULTS, spikeArrest } from './spike-arrest.js';

async function allowed(policy: Policy, req: FakeRequest = {}): Promise<boolean> {
  try {
    await policy.admit!(fakeContext(req), {});
    return true;
  } catch (err) {
    if (err instanceof GatewayError && err.status === 429 && err.code === SPIKE_ARREST_FAULTS.spikeArrestViolation) return false;
    throw err;
  }
}

describe('config', () => {
  const deps = testDeps(new MemoryCounterStore());
  for (const rate of ['10', '10pd', '0ps', '-1ps', '1.5ps', 'ps', 'fast']) {
    // One problem, the true one: before, also "rate must be at most 1000000ps (60000000pm)".
    test(`rate "${rate}" is refused, as not a rate alone`, () =>
      assert.throws(
        () => spikeArrest('s', { rate }, deps),
        (err: unknown) => (assert.deepEqual((err as ZodError).issues.map((i) => i.message), ['rate must be a count per second or minute, e.g. "10ps" or "600pm"']), true),
      ));
  }
  // Before: accepted, then not enforced (2000000ps let every request through: a microsecond is the counters' finest
  // step), and past 2^53 every request failed with a RangeError (500).
  for (const rate of ['1000001ps', '60000001pm', '2000000ps', '9007199254740993ps', '10000000000000000000ps']) {
    test(`rate "${rate}" is refused as faster than one per microsecond`, () => assert.throws(() => spikeArrest('s', { rate }, deps), /rate must be at most 1000000ps \(60000000pm\)/));
  }
  test('a rate is required; unknown fields are refused', () => {
    assert.throws(() => spikeArrest('s', {}, deps), /rate/);
    assert.throws(() => spikeArrest('s', { rate: '1ps', Rate: '1ps' }, deps), /Unrecognized key/);
  });
});

describeOnCounterBackends((counters) => {

  const make = (spec: Record<string, unknown>, clock: TestClock) => spikeArrest(unique('sa'), spec, testDeps(counters(), { now: clock.now }));

  const cases: ClockCase[] = [
    { name: '5ps: one per 200 ms', spec: { rate: '5ps' }, steps: [[0, true], [100, false], [199, false], [200, true], [300, false], [400, true]] },
    { name: '600pm: one per 100 ms', spec: { rate: '600pm' }, steps: [[0, true], [50, false], [100, true]] },
    // The clock ticks in whole milliseconds: 5000ps is five per tick, not one (a ceiling of 1,000 a second).
    { name: '5000ps: five requests in one millisecond, the sixth refused', spec: { rate: '5000ps' }, steps: [[0, true], [0, true], [0, true], [0, true], [0, true], [0, false], [1, true]] },
    { name: '100000pm: two in one millisecond', spec: { rate: '100000pm' }, steps: [[0, true], [0, true], [0, false], [1, true]] },
    // Before: 334 was admitted too (a burst of the whole count, then the refill within the same second).
    {
      name: 'useEffectiveCount: the whole second at once, then nothing until the first leaves the window',
      spec: { rate: '3ps', useEffectiveCount: true },
      steps: [[0, true], [1, true], [2, true], [3, false], [334, false], [999, false], [1000, true], [1000, false], [1001, true], [1002, true], [1003, false]],
    },
    // A minute's window counts in slots of 60 ms: a request leaves it once its whole slot has, up to 59 ms late.
    {
      name: 'useEffectiveCount per minute: sixty seconds',
      spec: { rate: '2pm', useEffectiveCount: true },
      steps: [[0, true], [30_000, true], [45_000, false], [60_058, false], [60_059, true], [60_059, false], [90_059, true]],
    },
  ];
  testClockCases(cases, make, (policy) => allowed(policy));

  for (const rate of ['1000000ps', '60000000pm']) {
    test(`the fastest rate, ${rate}, is enforced: 1,000 requests a millisecond`, async () => {
      const clock = new TestClock(MONDAY);
      const policy = make({ rate }, clock);
      const admitted = async () => {
        let n = 0;
        for (let i = 0; i < 1100; i++) if (await allowed(policy)) n++;
        return n;
      };
      await admitted();
      clock.advance(1);
      assert.equal(await admitted(), 1000, 'once the burst is spent');
    });
  }

  for (const [rate, periodMs] of [['10ps', 1000], ['30pm', 60_000]] as const) {
    test(`useEffectiveCount at ${rate}: never more than the rate's count in any one period of a flood`, async () => {
      const clock = new TestClock(MONDAY);
      const policy = make({ rate, useEffectiveCount: true }, clock);
      const admitted: number[] = [];
      const step = periodMs / 100;
      for (let t = 0; t < 3 * periodMs; t += step) {
        clock.t = MONDAY + t;
        if (await allowed(policy)) admitted.push(t);
      }
      const count = Number(rate.slice(0, -2));
      // Before: 19 at 10ps in the first second (10 at once, then one every 100 ms).
      const most = Math.max(...admitted.map((end) => admitted.filter((t) => t > end - periodMs && t <= end).length));
      assert.equal(most, count, `admitted at ${admitted.join(', ')}`);
      assert.equal(admitted.length, 3 * count, 'the whole count in each period');
    });
  }

  test('useEffectiveCount: a refusal says when the oldest request leaves the window', async () => {
    const clock = new TestClock(MONDAY);
    const policy = make({ rate: '2pm', useEffectiveCount: true }, clock);
    await policy.admit!(fakeContext(), {});
    clock.advance(10_000);
    await policy.admit!(fakeContext(), {});
    clock.advance(5_000);
    await assert.rejects(async () => policy.admit!(fakeContext(), {}), (err: GatewayError) => {
      assert.equal(err.code, 'policies.ratelimit.SpikeArrestViolation');
      // The first leaves 45.059 s later (its slot of 60 ms whole), rounded up.
      assert.equal(err.headers['retry-after'], '46');
      return true;
    });
  });

  test("a burst's refused callers that come back when told (up to a few ms late) all pass: each was given a slot of its own", async () => {
    const clock = new TestClock(MONDAY);
    const policy = make({ rate: '50ps' }, clock);
    // 30 at once: one passes, 29 are told when to come back.
    const waits: number[] = [];
    for (let i = 0; i < 30; i++) {
      try {
        await policy.admit!(fakeContext(), {});
      } catch (err) {
        waits.push(Number((err as GatewayError).headers['retry-after-ms']));
      }
    }
    assert.equal(waits.length, 29);
    // Each comes back at its time, some a little late, as a client's timer and the network make it.
    const returns = waits.map((w, i) => MONDAY + w + (i % 3) * 4).sort((a, b) => a - b);
    let passed = 0;
    for (const at of returns) {
      clock.advance(at - clock.now());
      if (await allowed(policy)) passed++;
    }
    // Before: told 20 ms plus a random share of 320 ms, they collided and about a third were refused again.
    assert.equal(passed, 29);
  });

  test('a refusal is 429 with retry-after', async () => {
    const clock = new TestClock(MONDAY);
    const policy = make({ rate: '1pm' }, clock);
    await policy.admit!(fakeContext(), {});
    clock.advance(15_000);
    await assert.rejects(async () => policy.admit!(fakeContext(), {}), (err: GatewayError) => {
      assert.equal(err.code, 'policies.ratelimit.SpikeArrestViolation');
      assert.equal(err.headers['retry-after'], '45');
      return true;
    });
  });

  test('without an identifier all traffic shares one counter; with one, each value has its own', async () => {
    const clock = new TestClock(MONDAY);
    const global = make({ rate: '1ps' }, clock);
    assert.equal(await allowed(global, { headers: { 'x-tenant': 'a' } }), true);
    assert.equal(await allowed(global, { headers: { 'x-tenant': 'b' } }), false);
    const perTenant = make({ rate: '1ps', identifier: { ref: 'request.header.x-tenant' } }, clock);
    assert.equal(await allowed(perTenant, { headers: { 'x-tenant': 'a' } }), true);
    assert.equal(await allowed(perTenant, { headers: { 'x-tenant': 'b' } }), true);
    assert.equal(await allowed(perTenant, { headers: { 'x-tenant': 'a' } }), false);
  });

  test('messageWeight takes as many slots as the weight', async () => {
    const clock = new TestClock(MONDAY);
    const policy = make({ rate: '10ps', messageWeight: { ref: 'request.header.x-weight' } }, clock);
    assert.equal(await allowed(policy, { headers: { 'x-weight': '3' } }), true);
    clock.t = MONDAY + 250;
    assert.equal(await allowed(policy), false, 'three slots of 100 ms are not over yet');
    clock.t = MONDAY + 300;
    assert.equal(await allowed(policy), true);
  });

  test('a weight above the rate\'s count is refused and not counted: it cannot lock the counter out', async () => {
    const clock = new TestClock(MONDAY);
    const policy = make({ rate: '10ps', messageWeight: { ref: 'request.header.x-weight' } }, clock);
    for (const weight of ['11', '1000000000']) {
      await assert.rejects(async () => policy.admit!(fakeContext({ headers: { 'x-weight': weight } }), {}), (err: GatewayError) => {
        assert.equal(err.status, 429);
        assert.equal(err.code, SPIKE_ARREST_FAULTS.spikeArrestViolation);
        assert.equal(err.headers['retry-after'], undefined, 'waiting would not help');
        assert.equal(err.headers['x-should-retry'], 'false', 'nor would the SDKs\' retries');
        return true;
      });
    }
    assert.equal(await allowed(policy), true, 'the refused weights took no slot');
    clock.advance(100);
    assert.equal(await allowed(policy, { headers: { 'x-weight': '10' } }), true, "the rate's whole count fits when the counter is idle");
    clock.advance(999);
    assert.equal(await allowed(policy), false);
    clock.advance(1);
    assert.equal(await allowed(policy), true, 'one period later');
  });
});
