import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import type { PoolConfig } from '../config/runtime-config.js';
import type { GatewayError } from '../gateway/errors.js';
import { PickerConfigError } from './compile-picker-config.js';
import type { MetricsSource } from './metrics-source.js';
import { Scheduler } from './scheduler.js';
import { RECOVERY_HELD_MS } from './status-log.js';
import { SETTINGS, captureLogger, pool, request, vllmPage } from './testing.js';
import type { Pick, PickRequest } from './types.js';
import type { SchedulerSettings } from './plugin-types.js';

const URLS = ['http://10.0.0.1:8000', 'http://10.0.0.2:8000', 'http://10.0.0.3:8000', 'http://10.0.0.4:8000'];

/** A scheduler over fake /metrics pages and a hand-driven clock. */
async function setup(opts: { urls?: string[]; settings?: Partial<SchedulerSettings>; picker?: PoolConfig['picker'] } = {}) {
  const urls = opts.urls ?? URLS;
  const pages = new Map<string, string | Error>(urls.map((u) => [u, vllmPage()]));
  const source: MetricsSource = {
    fetch: async (url) => {
      const page = pages.get(url) ?? new Error('no such endpoint');
      if (page instanceof Error) throw page;
      return { text: page };
    },
    retain: () => {},
    close: async () => {},
  };
  let now = 1_000_000;
  const registry = new Registry();
  const { logger, lines } = captureLogger();
  const scheduler = new Scheduler({ settings: { ...SETTINGS, ...opts.settings }, now: () => now, random: () => 0, metricsSource: source, registry, logger });
  const p = pool('p', urls, { picker: opts.picker });
  scheduler.update(new Map([['p', p]]));
  await scheduler.refresh();
  return {
    scheduler,
    pool: p,
    registry,
    logs: lines,
    /** Serves `page` (or fails) at endpoint i from the next scrape on. */
    serve: (i: number, page: string | Error) => void pages.set(urls[i], page),
    advance: (ms: number) => void (now += ms),
    pick: async (r: Partial<PickRequest> = {}) => scheduler.pick(request(p, r)),
    address: (i: number) => new URL(urls[i]).host,
  };
}

const chosen = (pick: Pick) => pick.endpoints[0].address;
const code = (err: unknown) => (err as GatewayError).code;

describe('Scheduler', () => {
  test('picks the least loaded endpoint and lists every other eligible one as a fallback, best first', async () => {
    const s = await setup();
    s.serve(0, vllmPage({ waiting: 3, kv: 0.5 }));
    s.serve(1, vllmPage({ waiting: 0, kv: 0.1 }));
    s.serve(2, vllmPage({ waiting: 1, kv: 0.2 }));
    s.serve(3, new Error('connection refused'));
    s.advance(3000); // endpoint 3's only good scrape is now stale
    await s.scheduler.refresh();
    const pick = await s.pick();
    assert.deepEqual(
      pick.endpoints.map((e) => e.address),
      [s.address(1), s.address(2), s.address(0)],
    );
  });

  test('a burst spreads: picks since the last scrape count as load', async () => {
    const s = await setup();
    const counts = new Map<string, number>();
    for (let i = 0; i < 8; i++) {
      const a = chosen(await s.pick());
      counts.set(a, (counts.get(a) ?? 0) + 1);
    }
    assert.deepEqual([...counts.values()], [2, 2, 2, 2]);
  });

  test('sheddable requests get 429 with retry-after while saturated; others queue and go when room appears', async () => {
    const s = await setup({ urls: URLS.slice(0, 1) });
    s.serve(0, vllmPage({ waiting: 6 }));
    await s.scheduler.refresh();
    await assert.rejects(s.pick({ priority: -1 }), (err: GatewayError) => {
      assert.equal(err.status, 429);
      assert.equal(err.code, 'request_shed');
      assert.equal(err.headers['retry-after'], '1');
      return true;
    });
    const waiting = s.pick({ priority: 0, targetModel: 'queued' });
    assert.equal(s.scheduler.view('p')!.queueLength, 1);
    assert.equal(s.scheduler.view('p')!.saturated, true);
    s.advance(40);
    s.serve(0, vllmPage({ waiting: 1 }));
    await s.scheduler.refresh(); // room now: the queue drains after the scrape
    const pick = await waiting;
    assert.equal(chosen(pick), s.address(0));
    const view = s.scheduler.view('p')!;
    assert.equal(view.queueLength, 0);
    assert.equal(view.decisions[0].model, 'queued');
    assert.equal(view.decisions[0].queuedMs, 40);
  });

  test('full batches: with one priority the engines queue; once priorities mix, requests wait in the gateway (sheddable shed) and leave by priority', async () => {
    const s = await setup({ urls: URLS.slice(0, 2) });
    // Both engines were seen running 8 with a queue: a batch capacity of 8, and both full.
    s.serve(0, vllmPage({ waiting: 1, running: 8 }));
    s.serve(1, vllmPage({ waiting: 2, running: 8 }));
    await s.scheduler.refresh();
    assert.equal(s.scheduler.view('p')!.endpoints[0].batchCapacity, 8);
    // Only standard work: an engine's FIFO queue serves it in the gateway's order anyway (waiting ≤ 5: room).
    assert.equal(s.scheduler.view('p')!.saturated, false);
    const first = s.scheduler.pick(request(s.pool, { priority: 0 }));
    assert.ok(!(first instanceof Promise));
    // Now a standard request runs: requests of other priorities see the full batches.
    await assert.rejects(s.pick({ priority: -1 }), (err) => code(err) === 'request_shed');
    const order: string[] = [];
    const critical = s.pick({ priority: 1, targetModel: 'critical' }).then((p) => (order.push('critical'), p));
    const standard = s.pick({ priority: 0, targetModel: 'standard' }).then((p) => (order.push('standard'), p));
    assert.equal(s.scheduler.view('p')!.queueLength, 2);
    // Endpoint 1 frees slots: the critical request goes first, and to it, not to the full endpoint 0.
    s.serve(1, vllmPage({ waiting: 0, running: 5 }));
    s.advance(10);
    await s.scheduler.refresh();
    const [a, b] = await Promise.all([critical, standard]);
    assert.deepEqual(order, ['critical', 'standard']);
    assert.equal(chosen(a), s.address(1));
    assert.equal(chosen(b), s.address(1));
    // The full endpoint stays as the last fallback.
    assert.equal(a.endpoints.at(-1)!.address, s.address(0));
  });

  test('flowControl.enabled false: full batches and long queues hold nothing back, shed nothing, and do not steer the pick', async () => {
    const picker = { plugins: [{ type: 'round-robin-picker' }], flowControl: { enabled: false } };
    const s = await setup({ urls: URLS.slice(0, 2), picker });
    s.serve(0, vllmPage({ waiting: 9, running: 8 }));
    s.serve(1, vllmPage({ waiting: 0, running: 4 }));
    await s.scheduler.refresh();
    assert.equal(s.scheduler.view('p')!.saturated, false); // endpoint 1 has room, yet round-robin ignores it
    const picks = [await s.pick({ priority: -1 }), await s.pick({ priority: -1 }), await s.pick({ priority: 1 })];
    assert.deepEqual(picks.map(chosen), [s.address(0), s.address(1), s.address(0)]);
    s.serve(1, vllmPage({ waiting: 9, running: 8 }));
    await s.scheduler.refresh();
    assert.equal(s.scheduler.view('p')!.saturated, true);
    // Saturated: still sent at once (synchronously), sheddable included, and nothing queued.
    const direct = s.scheduler.pick(request(s.pool, { priority: -1 }));
    assert.ok(!(direct instanceof Promise));
    assert.equal(s.scheduler.view('p')!.queueLength, 0);
  });

  test('flowControl.batchCapacity replaces the learnt capacity', async () => {
    const s = await setup({ urls: URLS.slice(0, 1), picker: { plugins: [{ type: 'queue-scorer' }], flowControl: { batchCapacity: 8 } } });
    s.serve(0, vllmPage({ waiting: 0, running: 6 }));
    await s.scheduler.refresh();
    assert.equal(s.scheduler.view('p')!.endpoints[0].batchCapacity, 8);
    await s.pick({ priority: 0 });
    // 7 running: learnt (6 seen, one more allowed) the batch would be full and a sheddable request shed; configured, one slot is free.
    await s.pick({ priority: -1 });
    await assert.rejects(s.pick({ priority: -1 }), (err) => code(err) === 'request_shed');
  });

  test('flowControl.reservedSlots: while critical work runs, the last free slots of each batch are kept for it', async () => {
    const s = await setup({ urls: URLS.slice(0, 1), picker: { plugins: [{ type: 'queue-scorer' }], flowControl: { batchCapacity: 4, reservedSlots: 1 } } });
    s.serve(0, vllmPage({ running: 2 }));
    await s.scheduler.refresh();
    // No critical request yet: standard work may take every slot.
    const first = await s.pick({ priority: 0 });
    const critical = await s.pick({ priority: 1 }); // the last slot
    first.release(first.endpoints[0], { reached: true, status: 200 });
    // One slot free, and it is reserved while the critical request runs: standard waits, sheddable is shed.
    await assert.rejects(s.pick({ priority: -1 }), (err) => code(err) === 'request_shed');
    let standardGone = false;
    const standard = s.pick({ priority: 0 }).then((p) => ((standardGone = true), p));
    const second = await s.pick({ priority: 1 }); // takes the reserved slot at once, ahead of the queued standard request
    assert.equal(chosen(second), s.address(0));
    assert.equal(standardGone, false);
    // The critical requests end: no reservation any more, and the queued request goes.
    critical.release(critical.endpoints[0], { reached: true, status: 200 });
    second.release(second.endpoints[0], { reached: true, status: 200 });
    await standard;
    assert.equal(s.scheduler.view('p')!.queueLength, 0);
  });

  test('queued requests leave by priority, then round-robin between tenants', async () => {
    const s = await setup({ urls: URLS.slice(0, 1) });
    s.serve(0, vllmPage({ waiting: 6 }));
    await s.scheduler.refresh();
    const order: string[] = [];
    const queued = [
      ['a1', 0, 'a'],
      ['a2', 0, 'a'],
      ['b1', 0, 'b'],
      ['crit', 1, 'a'],
      ['obj', 7, 'c'],
    ].map(([name, priority, tenant]) =>
      s.pick({ targetModel: name as string, priority: priority as number, fairnessId: tenant as string }).then(() => void order.push(name as string)),
    );
    // Each scrape shows room for exactly one more request (5 waiting; one pick makes 6).
    for (let i = 0; i < 5; i++) {
      s.serve(0, vllmPage({ waiting: 5 }));
      await s.scheduler.refresh();
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(queued);
    assert.deepEqual(order, ['obj', 'crit', 'a1', 'b1', 'a2']);
  });

  test('a release makes room and drains the queue at once', async () => {
    const s = await setup({ urls: URLS.slice(0, 1) });
    s.serve(0, vllmPage({ waiting: 5 }));
    await s.scheduler.refresh();
    const first = await s.pick();
    const second = s.pick({ targetModel: 'second' });
    assert.equal(s.scheduler.view('p')!.queueLength, 1);
    first.release(first.endpoints[0], { reached: true, status: 200 });
    assert.equal(chosen(await second), s.address(0));
  });

  test('the queue is bounded in length and in waiting time (503)', async () => {
    const s = await setup({ urls: URLS.slice(0, 1), settings: { flowControl: { maxQueueLength: 1, maxQueueBytes: 1 << 20, maxWait: 25 } } });
    s.serve(0, vllmPage({ waiting: 50 }));
    await s.scheduler.refresh();
    const first = s.pick();
    await assert.rejects(s.pick(), (err) => code(err) === 'queue_full');
    await assert.rejects(first, (err) => code(err) === 'queue_timeout');
    assert.equal(s.scheduler.view('p')!.queueLength, 0);
  });

  test('an aborted request leaves the queue', async () => {
    const s = await setup({ urls: URLS.slice(0, 1) });
    s.serve(0, vllmPage({ waiting: 50 }));
    await s.scheduler.refresh();
    const ac = new AbortController();
    const waiting = s.pick({ signal: ac.signal });
    ac.abort(new Error('client closed'));
    await assert.rejects(waiting, /client closed/);
    assert.equal(s.scheduler.view('p')!.queueLength, 0);
  });

  test('no eligible endpoint: 503 at once for new requests; queued ones wait for an endpoint to come back', async () => {
    const s = await setup({ urls: URLS.slice(0, 1) });
    s.serve(0, vllmPage({ waiting: 50 }));
    await s.scheduler.refresh();
    const queued = s.pick({ targetModel: 'queued' });
    s.serve(0, new Error('refused'));
    for (let i = 0; i < 3; i++) await s.scheduler.refresh();
    await assert.rejects(s.pick(), (err) => code(err) === 'no_healthy_endpoints' && (err as GatewayError).status === 503);
    // Before: the queued request got the same 503 the moment the endpoint went out.
    assert.equal(s.scheduler.view('p')!.queueLength, 1);
    s.serve(0, vllmPage());
    await s.scheduler.refresh();
    assert.equal(chosen(await queued), s.address(0));
    await assert.rejects(s.scheduler.pick(request(pool('unknown', []))) as Promise<Pick>, /not known/);
  });

  test('a request that could not reach the only endpoint leaves the others queued, within their maxWait', async () => {
    const s = await setup({ urls: URLS.slice(0, 1), settings: { flowControl: { maxQueueLength: 10, maxQueueBytes: 1 << 20, maxWait: 50 } } });
    const running = await s.pick();
    s.serve(0, vllmPage({ waiting: 50 }));
    await s.scheduler.refresh();
    const queued = [s.pick(), s.pick()];
    running.release(running.endpoints[0], { reached: false });
    assert.equal(s.scheduler.view('p')!.endpoints[0].status, 'unhealthy');
    assert.equal(s.scheduler.view('p')!.queueLength, 2);
    // No scrape brings it back in time: each waits its maxWait, then 503 queue_timeout.
    for (const q of queued) await assert.rejects(q, (err) => code(err) === 'queue_timeout');
  });

  test('the subset hint restricts the choice; a hint matching nothing is 503', async () => {
    const s = await setup();
    const pick = await s.pick({ subset: new Set([s.address(2), s.address(3)]) });
    assert.deepEqual(pick.endpoints.map((e) => e.address), [s.address(2), s.address(3)]);
    await assert.rejects(s.pick({ subset: new Set(['10.9.9.9:1']) }), (err) => code(err) === 'no_healthy_endpoints');
  });

  test('stale endpoints are skipped and come back with the next good scrape, with a log line each way', async () => {
    const s = await setup({ urls: URLS.slice(0, 2) });
    s.serve(1, new Error('timeout'));
    s.advance(2500);
    await s.scheduler.refresh(); // endpoint 0 fresh again; endpoint 1 failed and its last metrics are 2.5 s old
    const pick = await s.pick();
    assert.deepEqual(pick.endpoints.map((e) => e.address), [s.address(0)]);
    const warn = s.logs.find((l) => l.msg === 'endpoint stale, not picked until it recovers');
    assert.ok(warn);
    assert.equal(warn.endpoint, s.address(1));
    assert.equal(warn.error, 'timeout');
    s.serve(1, vllmPage());
    await s.scheduler.refresh();
    assert.equal((await s.pick()).endpoints.length, 2);
    // Its recovery is told once it held (a flapping endpoint logged every turn).
    s.advance(RECOVERY_HELD_MS);
    await s.scheduler.refresh();
    assert.ok(s.logs.some((l) => l.msg === 'endpoint recovered' && l.endpoint === s.address(1) && l.was === 'stale'));
  });

  test('a failed request takes the endpoint out at once; the next good scrape brings it back', async () => {
    const s = await setup({ urls: URLS.slice(0, 2) });
    const pick = await s.pick();
    const first = pick.endpoints[0];
    pick.release(first, { reached: false });
    pick.release(pick.endpoints[1], { reached: true, status: 200 });
    assert.ok(s.logs.some((l) => l.msg === 'endpoint unhealthy, not picked until it recovers' && l.endpoint === first.address));
    for (let i = 0; i < 3; i++) assert.notEqual(chosen(await s.pick()), first.address);
    await s.scheduler.refresh();
    assert.equal((await s.pick()).endpoints.length, 2);
  });

  test('a request that goes on to a fallback is counted there: in-flight, prefix index, priority running', async () => {
    const s = await setup({ urls: URLS.slice(0, 2), picker: { plugins: [{ type: 'prefix-cache-scorer' }], flowControl: { batchCapacity: 4, reservedSlots: 1 } } });
    const prompt = 'a long shared system prompt '.repeat(20);
    const pick = await s.pick({ prompt, priority: 1 });
    const [first, second] = pick.endpoints;
    const view = () => s.scheduler.view('p')!.endpoints;
    const inFlight = () => Object.fromEntries(view().map((e) => [e.address, e.inFlight]));
    pick.release(first, { reached: true, status: 503 });
    pick.fallback!(second);
    // Before: 0 on both while the fallback served it, and only the failed endpoint was credited with the prompt.
    assert.deepEqual(inFlight(), { [first.address]: 0, [second.address]: 1 });
    const again = await s.pick({ prompt, priority: 1 });
    assert.equal(view().find((e) => e.address === second.address)!.lastScores['prefix-cache-scorer'], 1);
    again.release(again.endpoints[0], { reached: true, status: 200 });
    // Critical work still runs (on the fallback): standard requests leave it the reserved slot of each batch.
    s.serve(0, vllmPage({ running: 3 }));
    s.serve(1, vllmPage({ running: 3 }));
    await s.scheduler.refresh();
    let standardGone = false;
    const standard = s.pick({ priority: 0 }).then((p) => ((standardGone = true), p));
    await new Promise((r) => setImmediate(r));
    assert.equal(standardGone, false);
    pick.release(second, { reached: true, status: 200 });
    const served = await standard;
    served.release(served.endpoints[0], { reached: true, status: 200 });
    assert.deepEqual(inFlight(), { [first.address]: 0, [second.address]: 0 });
  });

  test('an attempt tollgate abandoned (client gone, deadline) leaves the endpoint in', async () => {
    const s = await setup({ urls: URLS.slice(0, 1) });
    const pick = await s.pick();
    pick.release(pick.endpoints[0], { reached: false, abandoned: true });
    assert.ok(!s.logs.some((l) => l.msg === 'endpoint unhealthy, not picked until it recovers'));
    assert.equal(chosen(await s.pick()), pick.endpoints[0].address);
  });

  test('release counts the chosen endpoint once, however often it is called', async () => {
    const s = await setup({ urls: URLS.slice(0, 1) });
    const pick = await s.pick();
    const ep = () => s.scheduler.view('p')!.endpoints[0];
    assert.equal(ep().inFlight, 1);
    pick.release(pick.endpoints[0], { reached: true, status: 200 });
    pick.release(pick.endpoints[0], { reached: true, status: 200 });
    assert.equal(ep().inFlight, 0);
  });

  test('prefix affinity: a long shared prompt returns to the endpoint that served it', async () => {
    const s = await setup();
    const system = 'system: you are a helpful assistant. '.repeat(40);
    const first = chosen(await s.pick({ prompt: system + 'user: first question' }));
    s.advance(10);
    await s.scheduler.refresh(); // forget the in-flight pick's load; only the prefix differs now
    assert.equal(chosen(await s.pick({ prompt: system + 'user: second question' })), first);
  });

  test('LoRA affinity weighs in for adapter requests only', async () => {
    const s = await setup({ urls: URLS.slice(0, 2) });
    const lora = (running: string) =>
      `vllm:lora_requests_info{max_lora="1",running_lora_adapters="${running}",waiting_lora_adapters=""} 5`;
    s.serve(0, vllmPage({ model: 'base', waiting: 1, extra: lora('other') }));
    s.serve(1, vllmPage({ model: 'base', waiting: 1, kv: 0.1, extra: lora('sql') }));
    await s.scheduler.refresh();
    assert.equal(chosen(await s.pick({ targetModel: 'sql' })), s.address(1));
    await s.scheduler.refresh();
    assert.equal(chosen(await s.pick({ targetModel: 'base' })), s.address(0));
    const scores = s.scheduler.view('p')!.decisions[0].scores;
    assert.equal(scores['lora-affinity-scorer'], null);
    // An adapter no endpoint has loaded yet is recognised too (not the base model, servers take adapters).
    await s.scheduler.refresh();
    await s.pick({ targetModel: 'brand-new' });
    assert.equal(s.scheduler.view('p')!.decisions[0].scores['lora-affinity-scorer'], 0);
  });

  test('adapter names follow what the endpoints list now: one no endpoint lists any more is no adapter', async () => {
    // No model_name label: no base model known, so only the endpoints' lists say which names are adapters.
    const s = await setup({ urls: URLS.slice(0, 1) });
    const info = (running: string) => `vllm:lora_requests_info{max_lora="2",running_lora_adapters="${running}",waiting_lora_adapters=""} 5`;
    const loraScore = async (model: string) => {
      const pick = await s.pick({ targetModel: model });
      pick.release(pick.endpoints[0], { reached: true, status: 200 });
      return s.scheduler.view('p')!.decisions[0].scores['lora-affinity-scorer'];
    };
    s.serve(0, vllmPage({ extra: info('old') }));
    await s.scheduler.refresh();
    assert.equal(await loraScore('old'), 1);
    s.serve(0, vllmPage({ extra: info('new') }));
    await s.scheduler.refresh();
    assert.equal(await loraScore('new'), 1);
    // Before: every name ever listed stayed an adapter, and a server listing new ones at each scrape grew the gateway
    // without bound.
    assert.equal(await loraScore('old'), null);
  });

  test('a flapping /metrics logs the fall once, then the recovery once it held, with the flaps between', async () => {
    const s = await setup({ urls: URLS.slice(0, 1) });
    const lines = () => s.logs.filter((l) => l.endpoint === s.address(0) && l.status !== undefined);
    // Three failed scrapes and a good one, by turns (a sick sidecar): out and back every 200 ms.
    for (let turn = 0; turn < 20; turn++) {
      s.serve(0, new Error('refused'));
      for (let i = 0; i < 3; i++) {
        s.advance(50);
        await s.scheduler.refresh();
      }
      s.serve(0, vllmPage());
      s.advance(50);
      await s.scheduler.refresh();
    }
    // Before: 40 lines, unhealthy and recovered by turns.
    assert.deepEqual(lines().map((l) => [l.msg, l.was]), [['endpoint unhealthy, not picked until it recovers', 'ready']]);
    s.advance(RECOVERY_HELD_MS);
    await s.scheduler.refresh();
    assert.deepEqual(lines().slice(1).map((l) => [l.msg, l.was, l.flaps]), [['endpoint recovered', 'unhealthy', 19]]);
  });

  test("this gateway's own stall past staleAfter takes no endpoint out: they stay until the scrapes due meanwhile are read", async () => {
    const s = await setup({ urls: URLS.slice(0, 2) });
    s.scheduler.start();
    try {
      // The event loop stalled for 3 s (a long GC, a host short of CPU): the clock moved on, and neither the scrape
      // timers nor the answers that came meanwhile have run yet; the requests that came are read first.
      s.advance(3000);
      assert.deepEqual(s.scheduler.view('p')!.endpoints.map((e) => e.status), ['ready', 'ready']);
      // Before: 503 no_healthy_endpoints, every endpoint's metrics being 3 s old.
      const [any, hinted] = await Promise.all([s.pick(), s.pick({ subset: new Set([s.address(1)]) })]);
      assert.equal(any.endpoints.length, 2);
      assert.equal(chosen(hinted), s.address(1));
    } finally {
      await s.scheduler.stop();
    }
    // Not scraped any more (no scrape due), its metrics older than staleAfter: stale, as ever.
    s.advance(3000);
    assert.deepEqual(s.scheduler.view('p')!.endpoints.map((e) => e.status), ['stale', 'stale']);
    await assert.rejects(s.pick(), (err) => code(err) === 'no_healthy_endpoints');
  });

  test('view: per-endpoint metrics, freshness, health, last scores, and recent decisions', async () => {
    const s = await setup({ urls: URLS.slice(0, 2) });
    s.serve(0, vllmPage({ waiting: 2, running: 3, kv: 0.25, model: 'base' }));
    await s.scheduler.refresh();
    s.advance(30);
    await s.pick({ targetModel: 'base', priority: 1 });
    const view = s.scheduler.view('p')!;
    assert.equal(s.scheduler.view('missing'), undefined);
    assert.deepEqual(s.scheduler.view().map((v) => v.name), ['p']);
    assert.equal(view.engine, 'vllm');
    assert.equal(view.saturated, false);
    assert.equal(view.queueLength, 0);
    assert.deepEqual(view.profile.scorers.map((x) => x.weight), [3, 1, 2, 4, 6]);
    const e0 = view.endpoints[0];
    assert.equal(e0.status, 'ready');
    assert.equal(e0.freshnessMs, 30);
    assert.deepEqual(
      [e0.metrics.waiting, e0.metrics.running, e0.metrics.kvCacheUsage, e0.metrics.modelName],
      [2, 3, 0.25, 'base'],
    );
    assert.deepEqual(Object.keys(e0.lastScores), ['queue-scorer', 'least-requests-scorer', 'kv-cache-utilization-scorer', 'prefix-cache-scorer', 'lora-affinity-scorer']);
    assert.equal(e0.lastScores['queue-scorer'], 0);
    const d = view.decisions[0];
    assert.equal(d.endpoint, s.address(1));
    assert.equal(d.priority, 1);
    assert.equal(d.model, 'base');
    assert.equal(d.scores['queue-scorer'], 1);
    assert.equal(d.total, 3 + 1 + 2); // queue 3 × 1 + least requests 1 × 1 + KV 2 × 1; no full prompt block, no adapter
    assert.equal(typeof d.at, 'string');
    assert.deepEqual(JSON.parse(JSON.stringify(view)).name, 'p');
  });

  test('ready(): reachable while an endpoint has fresh metrics or answered recently', async () => {
    const s = await setup({ urls: URLS.slice(0, 1) });
    assert.deepEqual(s.scheduler.ready(), [{ pool: 'p', reachable: true }]);
    const pick = await s.pick();
    s.advance(2500);
    assert.deepEqual(s.scheduler.ready(), [{ pool: 'p', reachable: false }]);
    pick.release(pick.endpoints[0], { reached: true, status: 200 });
    assert.deepEqual(s.scheduler.ready(), [{ pool: 'p', reachable: true }]);
  });

  test('update keeps the state of endpoints that stay, adds new ones, and refuses what waits for a removed pool', async () => {
    const s = await setup({ urls: URLS.slice(0, 2) });
    s.serve(0, vllmPage({ waiting: 3 }));
    await s.scheduler.refresh();
    const next = pool('p', [URLS[0], URLS[2]]);
    s.scheduler.update(new Map([['p', next]]));
    const eps = s.scheduler.view('p')!.endpoints;
    assert.deepEqual(eps.map((e) => [e.address, e.status, e.metrics.waiting]), [
      [s.address(0), 'ready', 3],
      ['10.0.0.3:8000', 'pending', 0],
    ]);
    s.serve(0, vllmPage({ waiting: 50 }));
    await s.scheduler.refresh();
    const queued = Promise.resolve(s.scheduler.pick(request(next)));
    s.scheduler.update(new Map());
    await assert.rejects(queued, /was removed/);
    assert.deepEqual(s.scheduler.view(), []);
  });

  test('a pool renamed on reload keeps its queue, endpoint state and in-flight counts under the new name', async () => {
    const s = await setup({ urls: URLS.slice(0, 1) });
    const running = await s.pick();
    s.serve(0, vllmPage({ waiting: 50 }));
    await s.scheduler.refresh();
    const queued = Promise.resolve(s.pick({ targetModel: 'queued' }));
    // The same server under a new name, with one more; another pool shares nothing and starts afresh.
    const renamed = pool('q', [URLS[0], URLS[2]]);
    s.scheduler.update(new Map([['q', renamed], ['other', pool('other', [URLS[3]])]]));
    assert.deepEqual(s.scheduler.view().map((p) => p.name).sort(), ['other', 'q']);
    const view = s.scheduler.view('q')!;
    // Before: the queued request was refused (503, pool "p" was removed) and the new pool knew nothing of the servers.
    assert.equal(view.queueLength, 1);
    assert.deepEqual(view.endpoints.map((e) => [e.address, e.status, e.inFlight]), [
      [s.address(0), 'ready', 1],
      ['10.0.0.3:8000', 'pending', 0],
    ]);
    s.serve(0, vllmPage());
    await s.scheduler.refresh();
    assert.equal(chosen(await queued), s.address(0));
    running.release(running.endpoints[0], { reached: true, status: 200 });
  });

  test('two pools swapping names on reload: each queue follows its servers, not its name', async () => {
    const s = await setup({ urls: URLS.slice(0, 2) });
    const a = pool('a', [URLS[0]]);
    const b = pool('b', [URLS[1]]);
    s.scheduler.update(new Map([['a', a], ['b', b]]));
    s.serve(0, vllmPage({ waiting: 50 }));
    await s.scheduler.refresh();
    const queued = Promise.resolve(s.scheduler.pick(request(a, { targetModel: 'alpha' })));
    assert.equal(s.scheduler.view('a')!.queueLength, 1);
    s.scheduler.update(new Map([['a', pool('a', [URLS[1]])], ['b', pool('b', [URLS[0]])]]));
    assert.deepEqual([s.scheduler.view('a')!.queueLength, s.scheduler.view('b')!.queueLength], [0, 1]);
    s.serve(0, vllmPage());
    await s.scheduler.refresh();
    // Before: the request stayed queued under "a" and went to a's new server (URLS[1], which never ran its model).
    assert.equal(chosen(await queued), s.address(0));
  });

  test('a name that takes another pool\'s servers refuses what its own pool had queued, as a removed pool does', async () => {
    const s = await setup({ urls: URLS.slice(0, 2) });
    const a = pool('a', [URLS[0]]);
    s.scheduler.update(new Map([['a', a], ['b', pool('b', [URLS[1]])]]));
    s.serve(0, vllmPage({ waiting: 50 }));
    await s.scheduler.refresh();
    const queued = Promise.resolve(s.scheduler.pick(request(a)));
    s.scheduler.update(new Map([['a', pool('a', [URLS[1]])]]));
    await assert.rejects(queued, (err) => code(err) === 'no_healthy_endpoints' && /another pool/.test((err as Error).message));
    assert.deepEqual(s.scheduler.view().map((p) => [p.name, p.endpoints.map((e) => e.address)]), [['a', [s.address(1)]]]);
  });

  test('a reload that replaces every endpoint: queued and new requests wait for the new ones\' first scrape', async () => {
    const s = await setup();
    const first = pool('p', [URLS[0]]);
    s.scheduler.update(new Map([['p', first]]));
    s.serve(0, vllmPage({ waiting: 50 }));
    await s.scheduler.refresh();
    const queued = Promise.resolve(s.scheduler.pick(request(first)));
    const next = pool('p', [URLS[1]]);
    s.scheduler.update(new Map([['p', next]]));
    // Before: both were a 503 (no healthy endpoint) until the new endpoint's first scrape.
    const arriving = Promise.resolve(s.scheduler.pick(request(next)));
    s.serve(1, vllmPage());
    await s.scheduler.refresh();
    assert.equal(chosen(await queued), s.address(1));
    assert.equal(chosen(await arriving), s.address(1));
    // One that never answers its scrapes is no endpoint to wait for.
    const dead = pool('p', [URLS[2]]);
    s.scheduler.update(new Map([['p', dead]]));
    s.serve(2, new Error('refused'));
    const waiting = Promise.resolve(s.scheduler.pick(request(dead)));
    for (let i = 0; i < 3; i++) await s.scheduler.refresh();
    await assert.rejects(waiting, (err) => code(err) === 'no_healthy_endpoints');
  });

  test('sheddable requests waiting for a first scrape that shows the pool saturated get the 429 at once', async () => {
    const s = await setup();
    s.scheduler.update(new Map([['p', pool('p', [URLS[0]])]]));
    const next = pool('p', [URLS[1]]);
    s.scheduler.update(new Map([['p', next]]));
    const sheddable = Promise.resolve(s.scheduler.pick(request(next, { priority: -1 })));
    const standard = Promise.resolve(s.scheduler.pick(request(next, { priority: 0 })));
    assert.deepEqual(s.scheduler.view('p')!.queueByPriority, [{ priority: 0, length: 1 }, { priority: -1, length: 1 }]);
    s.serve(1, vllmPage({ waiting: 50 }));
    await s.scheduler.refresh();
    // Before: it stayed queued until maxWait, then got 503 queue_timeout.
    assert.deepEqual(s.scheduler.view('p')!.queueByPriority, [{ priority: 0, length: 1 }], 'only the standard one still waits');
    await assert.rejects(sheddable, (err: GatewayError) => err.code === 'request_shed' && err.status === 429 && err.headers['retry-after'] === '1');
    const text = await s.registry.metrics();
    assert.ok(text.includes('inference_extension_flow_control_request_queue_duration_seconds_count{pool="p",priority="-1",outcome="rejected"} 1'));
    s.serve(1, vllmPage());
    await s.scheduler.refresh();
    assert.equal(chosen(await standard), s.address(1));
  });

  test('a bad picker config is refused and changes nothing', async () => {
    const s = await setup({ urls: URLS.slice(0, 1) });
    const bad = pool('p', URLS.slice(0, 2), { picker: { plugins: [{ type: 'nope-scorer' }] } });
    assert.throws(() => s.scheduler.update(new Map([['p', bad]])), PickerConfigError);
    assert.equal(s.scheduler.view('p')!.endpoints.length, 1);
  });

  test('a configured profile replaces the default', async () => {
    const s = await setup({
      urls: URLS.slice(0, 2),
      picker: { plugins: [{ type: 'least-requests-scorer' }] },
    });
    s.serve(0, vllmPage({ waiting: 0, running: 9 }));
    s.serve(1, vllmPage({ waiting: 1, running: 1 }));
    await s.scheduler.refresh();
    assert.equal(chosen(await s.pick()), s.address(1));
    assert.deepEqual(s.scheduler.view('p')!.profile.scorers.map((x) => x.name), ['least-requests-scorer']);
  });

  test('stop refuses whatever still waits', async () => {
    const s = await setup({ urls: URLS.slice(0, 1) });
    s.serve(0, vllmPage({ waiting: 50 }));
    await s.scheduler.refresh();
    const queued = s.pick();
    await s.scheduler.stop();
    await assert.rejects(queued, (err) => code(err) === 'shutting_down');
  });

  test('metrics: pool gauges, queue size, decision and plugin durations, prefix hit ratio', async () => {
    const s = await setup({ urls: URLS.slice(0, 2) });
    s.serve(0, vllmPage({ waiting: 2, kv: 0.2 }));
    s.serve(1, vllmPage({ waiting: 4, kv: 0.4 }));
    await s.scheduler.refresh();
    await s.pick({ prompt: 'x'.repeat(200) });
    const text = await s.registry.metrics();
    const line = (prefix: string) => text.split('\n').find((l) => l.startsWith(prefix));
    assert.match(line('inference_pool_average_kv_cache_utilization{name="p"}')!, / 0\.3\d*$/);
    assert.match(line('inference_pool_average_queue_size{name="p"}')!, / 3\.5$/);
    assert.match(line('inference_pool_ready_pods{name="p"}')!, / 2$/);
    assert.match(line('inference_extension_scheduler_e2e_duration_seconds_count')!, / 1$/);
    assert.match(line('inference_extension_scheduler_plugin_duration_seconds_count{plugin_type="prefix-cache-scorer",plugin_name="prefix-cache-scorer"}')!, / 1$/);
    assert.match(line('inference_extension_prefix_indexer_hit_ratio_count')!, / 1$/);
    s.serve(0, vllmPage({ waiting: 50 }));
    s.serve(1, vllmPage({ waiting: 50 }));
    await s.scheduler.refresh();
    const queued = s.pick({ priority: 2 });
    const during = await s.registry.metrics();
    assert.ok(during.includes('inference_extension_flow_control_queue_size{pool="p",priority="2"} 1'));
    await s.scheduler.stop();
    await assert.rejects(queued);
    const after = await s.registry.metrics();
    assert.ok(after.includes('inference_extension_flow_control_request_queue_duration_seconds_count{pool="p",priority="2",outcome="rejected"} 1'));
  });

  test("metrics: a pool a reload removes takes its queue-wait series with it; the others' stay", async () => {
    const s = await setup({ urls: URLS.slice(0, 1) });
    s.serve(0, vllmPage({ waiting: 50 }));
    s.serve(1, vllmPage({ waiting: 50 }));
    const other = pool('q', [URLS[1]]);
    s.scheduler.update(new Map([['p', pool('p', [URLS[0]])], ['q', other]]));
    await s.scheduler.refresh();
    const inP = s.pick({ priority: 2 });
    const inQ = Promise.resolve(s.scheduler.pick(request(other, { priority: 2 })));
    s.scheduler.update(new Map([['q', other]]));
    await assert.rejects(inP);
    const series = (await s.registry.metrics()).split('\n').filter((l) => l.startsWith('inference_extension_flow_control_request_queue_duration_seconds_count'));
    // Before: pool "p"'s series stayed for the process's life, one set per pool name a reload ever dropped.
    assert.deepEqual(series, []);
    await s.scheduler.stop();
    await assert.rejects(inQ);
    assert.ok((await s.registry.metrics()).includes('inference_extension_flow_control_request_queue_duration_seconds_count{pool="q",priority="2",outcome="rejected"} 1'));
  });

  test('metrics: the queue-size gauge reads 0 once a queue empties, for every priority it held, until the pool goes', async () => {
    const s = await setup({ urls: URLS.slice(0, 1) });
    const gauge = async () => (await s.registry.metrics()).split('\n').filter((l) => l.startsWith('inference_extension_flow_control_queue_size{')).sort();
    assert.deepEqual(await gauge(), []);
    s.serve(0, vllmPage({ waiting: 50 }));
    await s.scheduler.refresh();
    const queued = [s.pick({ priority: 0 }), s.pick({ priority: 1 }), s.pick({ priority: 0 })];
    assert.deepEqual(await gauge(), ['inference_extension_flow_control_queue_size{pool="p",priority="0"} 2', 'inference_extension_flow_control_queue_size{pool="p",priority="1"} 1']);
    s.serve(0, vllmPage());
    await s.scheduler.refresh();
    await Promise.all(queued);
    // Before: both series vanished here, so a graph stopped at its last value and `== 0` never matched.
    assert.deepEqual(await gauge(), ['inference_extension_flow_control_queue_size{pool="p",priority="0"} 0', 'inference_extension_flow_control_queue_size{pool="p",priority="1"} 0']);
    s.scheduler.update(new Map());
    assert.deepEqual(await gauge(), []);
  });
});

describe('Scheduler.configure (a settings reload)', () => {
  const withSettings = (s: Partial<SchedulerSettings>): SchedulerSettings => ({ ...SETTINGS, ...s });

  test('staleAfter: the healthy filter and eligibility follow the new limit at the next decision', async () => {
    const s = await setup({ urls: URLS.slice(0, 2) });
    s.serve(1, new Error('timeout'));
    s.advance(1000);
    await s.scheduler.refresh(); // endpoint 0 fresh; endpoint 1's metrics are 1 s old (one failure: still healthy)
    assert.deepEqual((await s.pick()).endpoints.map((e) => e.address), [s.address(0), s.address(1)]);
    s.scheduler.configure(withSettings({ staleAfter: 500 }));
    assert.deepEqual((await s.pick()).endpoints.map((e) => e.address), [s.address(0)]);
    assert.deepEqual(s.scheduler.view('p')!.endpoints.map((e) => e.status), ['ready', 'stale']);
    s.advance(600);
    await assert.rejects(s.pick(), (err) => code(err) === 'no_healthy_endpoints');
    assert.equal(s.scheduler.ready()[0].reachable, false);
    s.scheduler.configure(withSettings({ staleAfter: 5000 }));
    assert.equal(s.scheduler.ready()[0].reachable, true);
    assert.deepEqual(s.scheduler.view('p')!.endpoints.map((e) => e.status), ['ready', 'ready']);
  });

  test('saturation thresholds: tighter ones shed at once, looser ones let queued requests go without waiting for a scrape', async () => {
    const s = await setup({ urls: URLS.slice(0, 1) });
    s.serve(0, vllmPage({ waiting: 3, kv: 0.5 }));
    await s.scheduler.refresh();
    await s.pick({ priority: -1 });
    s.scheduler.configure(withSettings({ saturation: { ...SETTINGS.saturation, queueDepthThreshold: 2 } }));
    await assert.rejects(s.pick({ priority: -1 }), (err) => code(err) === 'request_shed');
    s.scheduler.configure(withSettings({ saturation: { ...SETTINGS.saturation, kvCacheThreshold: 0.4 } }));
    await assert.rejects(s.pick({ priority: -1 }), (err) => code(err) === 'request_shed');
    const queued = s.pick({ targetModel: 'queued' });
    assert.equal(s.scheduler.view('p')!.queueLength, 1);
    s.scheduler.configure(withSettings({ saturation: { ...SETTINGS.saturation, queueDepthThreshold: 20, kvCacheThreshold: 0.9 } }));
    assert.equal(chosen(await queued), s.address(0));
    assert.equal(s.scheduler.view('p')!.queueLength, 0);
    // metricsFreshness: metrics 300 ms old cannot make the pool unsaturated under 200 ms, can under 1 s.
    s.advance(300);
    await assert.rejects(s.pick({ priority: -1 }), (err) => code(err) === 'request_shed');
    s.scheduler.configure(withSettings({ saturation: { ...SETTINGS.saturation, queueDepthThreshold: 20, metricsFreshness: 1000 } }));
    await s.pick({ priority: -1 });
  });

  test('flow-control limits apply to the next request; requests already queued keep their place and deadline', async () => {
    const s = await setup({ urls: URLS.slice(0, 1), settings: { flowControl: { maxQueueLength: 1, maxQueueBytes: 1 << 20, maxWait: 60_000 } } });
    s.serve(0, vllmPage({ waiting: 50 }));
    await s.scheduler.refresh();
    const first = s.pick({ targetModel: 'first' });
    await assert.rejects(s.pick(), (err) => code(err) === 'queue_full');
    s.scheduler.configure(withSettings({ flowControl: { maxQueueLength: 3, maxQueueBytes: 1 << 20, maxWait: 20 } }));
    const second = s.pick({ targetModel: 'second' });
    assert.equal(s.scheduler.view('p')!.queueLength, 2);
    await assert.rejects(second, (err) => code(err) === 'queue_timeout');
    // The first request was queued under maxWait 60 s: still waiting, and it goes when room appears.
    assert.equal(s.scheduler.view('p')!.queueLength, 1);
    s.serve(0, vllmPage({ waiting: 0 }));
    await s.scheduler.refresh();
    assert.equal(chosen(await first), s.address(0));
  });

  test('a release counts down where the pick counted, after a reload and a new DNS answer changed its address', async () => {
    const s = await setup({ urls: ['http://vllm:8000'] });
    const pick = await s.pick();
    assert.equal(s.scheduler.view('p')!.endpoints[0].inFlight, 1);
    // A reload compiles the endpoint anew; EndpointAddresses then gives it the address its host name resolves to now.
    const reloaded = pool('p', ['http://vllm:8000']);
    s.scheduler.update(new Map([['p', reloaded]]));
    reloaded.endpoints[0].address = '10.0.0.9:8000';
    pick.release(pick.endpoints[0], { reached: true, status: 200 });
    // Before: 1 for good (the release was matched by address, which the endpoint no longer had).
    assert.equal(s.scheduler.view('p')!.endpoints[0].inFlight, 0);
  });
});
