// An endpoint resting after a failed answer (5xx, 429) is picked only when no awake endpoint the request may use is
// left: also when priorities mix (the free-batch-slot preference ran before the healthy filter and put it first), in
// the saturation check (its idle metrics counted as room, so sheddable requests were not shed), and for a request
// pinned to it by a subset hint (a Responses API follow-up got 503 no_healthy_endpoints while others were awake).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { GatewayError } from '../src/gateway/errors.js';
import type { MetricsSource } from '../src/scheduler/metrics-source.js';
import { Scheduler } from '../src/scheduler/scheduler.js';
import { SETTINGS, pool, request, vllmPage } from '../src/scheduler/testing.js';
import type { Pick, PickRequest } from '../src/scheduler/types.js';

const FAILING = '10.0.0.1:8000';
const WORKING = '10.0.0.2:8000';
const SPARE = '10.0.0.3:8000';

/** Endpoints with idle pages and a batch capacity of 4 on a hand clock (a spare one too); the first has just answered a 500. */
async function setup(opts: { spare?: boolean } = {}) {
  const urls = [FAILING, WORKING, ...(opts.spare ? [SPARE] : [])].map((a) => `http://${a}`);
  const pages = new Map(urls.map((u) => [u, vllmPage()]));
  const source: MetricsSource = { fetch: async (u) => ({ text: pages.get(u)! }), retain: () => {}, close: async () => {} };
  let now = 1_000_000;
  const scheduler = new Scheduler({ settings: SETTINGS, now: () => now, random: () => 0, metricsSource: source });
  const p = pool('p', urls, { picker: { plugins: [{ type: 'queue-scorer' }], flowControl: { batchCapacity: 4 } } });
  scheduler.update(new Map([['p', p]]));
  await scheduler.refresh();
  const pick = async (r: Partial<PickRequest> = {}) => scheduler.pick(request(p, r));
  const probe = await pick({ subset: new Set([FAILING]) });
  probe.release(probe.endpoints[0], { reached: true, status: 500 });
  return {
    scheduler,
    pick,
    /** Serves `page` at the working endpoint and scrapes 10 ms later. */
    working: async (page: string) => {
      pages.set(urls[1], page);
      now += 10;
      await scheduler.refresh();
    },
  };
}

const order = (pick: Pick) => pick.endpoints.map((e) => e.address);

describe('a resting endpoint', () => {
  test("is no room once priorities mix and the awake endpoint's batch is full: the request waits for a slot there", async () => {
    const s = await setup();
    await s.working(vllmPage({ running: 2 }));
    await s.pick({ priority: 1, subset: new Set([WORKING]) }); // 3 of 4 slots taken, the last kept for critical work
    // The failing engine's batch looks free: before, the standard request went there first.
    assert.equal(s.scheduler.view('p')!.saturated, true);
    await assert.rejects(s.pick({ priority: -1 }), (err: GatewayError) => err.code === 'request_shed');
    const standard = s.pick({ priority: 0 });
    assert.equal(s.scheduler.view('p')!.queueLength, 1);
    await s.working(vllmPage({ running: 1 }));
    assert.deepEqual(order(await standard), [WORKING]);
  });

  test('is no last fallback behind an awake endpoint with free slots (the healthy filter drops it there)', async () => {
    const s = await setup();
    await s.working(vllmPage({ running: 1 }));
    await s.pick({ priority: 1, subset: new Set([WORKING]) });
    assert.deepEqual(order(await s.pick({ priority: 0 })), [WORKING]);
  });

  test('with one priority, does not keep a pool whose awake endpoint queues unsaturated: sheddable requests are shed', async () => {
    const s = await setup();
    await s.working(vllmPage({ waiting: 12, running: 8 }));
    assert.equal(s.scheduler.view('p')!.saturated, true);
    await assert.rejects(s.pick({ priority: -1 }), (err: GatewayError) => err.code === 'request_shed');
  });

  test('takes a request whose subset hint names only it; others first when the hint names them too', async () => {
    const s = await setup();
    assert.deepEqual(order(await s.pick({ subset: new Set([FAILING]) })), [FAILING]);
    assert.deepEqual(order(await s.pick({ subset: new Set([FAILING, WORKING]) })), [WORKING]);
    // With priorities mixed too (the free-slot preference first narrows to the awake endpoint).
    await s.pick({ priority: 1, subset: new Set([WORKING]) });
    assert.deepEqual(order(await s.pick({ subset: new Set([FAILING]) })), [FAILING]);
  });

  test('is not preferred for its free slots when the subset hint names a full awake endpoint too', async () => {
    const s = await setup({ spare: true });
    await s.working(vllmPage({ running: 2 }));
    await s.pick({ priority: 1, subset: new Set([WORKING]) }); // the working endpoint's last slot is kept for critical work
    assert.deepEqual(order(await s.pick({ subset: new Set([FAILING, WORKING]) })), [WORKING]);
  });
});
