import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { hasRoom, isSaturated, utilization } from './saturation.js';
import { EndpointState, FAILURES_BEFORE_UNHEALTHY } from './endpoint-state.js';
import { SETTINGS, endpoint, snapshot } from './testing.js';

// Defaults: queueDepthThreshold 5, kvCacheThreshold 0.8, metricsFreshness 200 ms, scrapeInterval 50 ms, staleAfter 2 s.
const NOW = 10_000;

describe('isSaturated', () => {
  const cases: { name: string; eps: { waiting: number; kv: number; age: number }[]; want: boolean }[] = [
    { name: 'one endpoint with room', eps: [{ waiting: 9, kv: 0.9, age: 0 }, { waiting: 5, kv: 0.8, age: 200 }], want: false },
    { name: 'every queue too long', eps: [{ waiting: 6, kv: 0.1, age: 0 }, { waiting: 7, kv: 0.1, age: 0 }], want: true },
    { name: 'every KV cache too full', eps: [{ waiting: 0, kv: 0.81, age: 0 }], want: true },
    { name: 'the only roomy endpoint has old metrics', eps: [{ waiting: 0, kv: 0, age: 201 }, { waiting: 9, kv: 0, age: 0 }], want: true },
    { name: 'no endpoint at all', eps: [], want: true },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const eps = c.eps.map((e, i) => endpoint(i, { waiting: e.waiting, kvCacheUsage: e.kv }, NOW - e.age));
      assert.equal(isSaturated(eps, NOW, SETTINGS), c.want);
    });
  }

  test('metrics are fresh for two scrape intervals and the time the scrape took, when that is longer than metricsFreshness', () => {
    // Scraped every second, an idle endpoint 600 ms after its last scrape: it was "stale" against 200 ms, so an idle
    // fleet shed sheddable requests most of the time.
    const idle = endpoint(1, {}, NOW - 600);
    assert.equal(isSaturated([idle], NOW, { ...SETTINGS, scrapeInterval: 1000 }), false);
    assert.equal(isSaturated([idle], NOW, SETTINGS), true, 'at 50 ms, 600 ms means scrapes stopped');
    // A /metrics that takes 230 ms to answer, scraped every 50 ms: a reading 300 ms old is the latest there can be.
    const slow = new EndpointState({ url: 'http://10.0.0.9:8000', address: '10.0.0.9:8000' }, 'vllm');
    slow.recordScrape(snapshot({}), NOW - 300, 230);
    assert.equal(isSaturated([slow], NOW, SETTINGS), false);
    assert.equal(isSaturated([slow], NOW + 100, SETTINGS), true, 'past 2 × 50 + 230 ms');
  });

  test('an endpoint too stale to be picked is no room, however long its scrapes take', () => {
    // Scraped every second with staleAfter 2 s, /metrics answering in 400 ms: fresh for 2.4 s by the scrape rule.
    const settings = { ...SETTINGS, scrapeInterval: 1000, staleAfter: 2000 };
    const busy = endpoint(1, { waiting: 20 }, NOW);
    const gone = new EndpointState({ url: 'http://10.0.0.2:8000', address: '10.0.0.2:8000' }, 'vllm');
    gone.recordScrape(snapshot({}), NOW - 2200, 400);
    assert.equal(gone.status(NOW, settings.staleAfter), 'stale');
    // Before: room (and the pool unsaturated) until 2.4 s, so the sheddable request went to the busy endpoint.
    assert.equal(hasRoom(gone, NOW, settings), false);
    assert.equal(isSaturated([busy, gone], NOW, settings), true);
    assert.equal(isSaturated([busy, gone], NOW - 300, settings), false, 'within staleAfter it is room');
    // A metricsFreshness beyond staleAfter stops there too (the default 200 ms is above a valid staleAfter of 50 ms).
    assert.equal(isSaturated([busy, gone], NOW, { ...settings, saturation: { ...settings.saturation, metricsFreshness: 5000 } }), true);
  });

  test("a resting endpoint's room counts only while every eligible endpoint rests", () => {
    // An engine answering every request 500 looks idle; the only working one is over the queue threshold.
    const failing = endpoint(1, {}, NOW);
    failing.recordAnswered(NOW, 500);
    const busy = endpoint(2, { waiting: 12 }, NOW);
    assert.equal(isSaturated([failing, busy], NOW, SETTINGS), true);
    assert.equal(isSaturated([failing], NOW, SETTINGS), false, 'nothing else to send to');
    assert.equal(isSaturated([failing, endpoint(3, {}, NOW - 2001)], NOW, SETTINGS), false, 'the awake one is stale');
    assert.equal(isSaturated([failing, busy], NOW + 100, SETTINGS), false, 'its rest is over');
  });

  test('unhealthy endpoints do not count as room', () => {
    const ep = endpoint(1, {}, NOW);
    for (let i = 0; i < FAILURES_BEFORE_UNHEALTHY; i++) ep.recordScrapeFailure('x');
    assert.equal(isSaturated([ep], NOW, SETTINGS), true);
  });

  test('picks since the scrape count as waiting', () => {
    const ep = endpoint(1, { waiting: 4 }, NOW);
    assert.equal(isSaturated([ep], NOW, SETTINGS), false);
    ep.recordPick(1);
    assert.equal(isSaturated([ep], NOW, SETTINGS), false);
    ep.recordPick(1); // 6 > 5
    assert.equal(isSaturated([ep], NOW, SETTINGS), true);
    ep.recordRelease(true, 1, NOW);
    assert.equal(isSaturated([ep], NOW, SETTINGS), false);
  });

  test('picks since the scrape to an engine that showed no queue wait only beyond its batch capacity', () => {
    // Unknown capacity (never seen running MIN_LEARNT_CAPACITY): a fast server scraped between answers.
    const fast = endpoint(1, { waiting: 0, running: 0 }, NOW);
    for (let i = 0; i < 32; i++) fast.recordPick(1);
    assert.equal(fast.queue, 32, 'the scorers still see the burst');
    assert.equal(fast.engineQueue, 0);
    assert.equal(isSaturated([fast], NOW, SETTINGS), false);
    // Known capacity 8 with 2 running: 6 more start at once, the rest wait.
    const batched = endpoint(2, { waiting: 0, running: 2 }, NOW);
    batched.setBatchCapacity(8);
    for (let i = 0; i < 11; i++) batched.recordPick(1);
    assert.equal(batched.engineQueue, 5);
    batched.recordPick(1);
    assert.equal(batched.engineQueue, 6);
    assert.equal(isSaturated([batched], NOW, SETTINGS), true);
  });
});

describe('utilization', () => {
  test('mean of max(queue/5, KV/0.8) over eligible endpoints', () => {
    const eps = [endpoint(1, { waiting: 5, kvCacheUsage: 0.4 }, NOW), endpoint(2, { waiting: 0, kvCacheUsage: 0.4 }, NOW), endpoint(3, { waiting: 50 }, 0)];
    assert.equal(utilization(eps, NOW, SETTINGS), 0.75);
    assert.equal(utilization([], NOW, SETTINGS), 0);
  });
});

describe('holding at batch capacity', () => {
  test('an endpoint whose batch is full (load ≥ the most seen running) has no room while its engine queues', () => {
    const ep = endpoint(1, { waiting: 0, running: 16 }, NOW);
    ep.recordScrape({ ...ep.metrics, waiting: 1, running: 16 }, NOW);
    assert.equal(ep.batchCapacity, 16);
    assert.equal(hasRoom(ep, NOW, SETTINGS), false);
    assert.equal(isSaturated([ep], NOW, SETTINGS), true); // though 1 waiting ≤ 5
  });

  test('a learnt capacity is probed: one more than the most seen running while the engine shows no queue', () => {
    const ep = endpoint(1, { waiting: 0, running: 4 }, NOW);
    assert.equal(endpoint(2, { waiting: 3, running: 3 }, NOW).freeSlots, Infinity); // below MIN_LEARNT_CAPACITY
    assert.equal(ep.freeSlots, 1);
    assert.equal(hasRoom(ep, NOW, SETTINGS), true);
    ep.recordPick(10);
    assert.equal(hasRoom(ep, NOW, SETTINGS), false);
    // The next scrape shows it running: the bound grows.
    ep.recordScrape({ ...ep.metrics, running: 5 }, NOW);
    assert.equal(ep.batchCapacity, 5);
    assert.equal(hasRoom(ep, NOW, SETTINGS), true);
  });

  test('a configured capacity is used as is', () => {
    const ep = endpoint(1, { waiting: 0, running: 4 }, NOW);
    ep.setBatchCapacity(8);
    assert.equal(ep.batchCapacity, 8);
    assert.equal(ep.freeSlots, 4);
    for (let i = 0; i < 4; i++) ep.recordPick(10);
    assert.equal(hasRoom(ep, NOW, SETTINGS), false);
    ep.recordRelease(true, 10, NOW);
    assert.equal(hasRoom(ep, NOW, SETTINGS), true);
  });
});
