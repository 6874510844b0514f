import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { EndpointState, FAILURES_BEFORE_UNHEALTHY, MAX_LEARNT_CAPACITY, estimateTokens } from './endpoint-state.js';
import { endpoint, snapshot } from './testing.js';

describe('EndpointState', () => {
  test('picks since the scrape count as waiting; finished requests come off; a scrape resets both', () => {
    const ep = endpoint(1, { waiting: 2, running: 5 });
    assert.deepEqual([ep.queue, ep.load, ep.inFlight], [2, 7, 0]);
    ep.recordPick(100);
    ep.recordPick(100);
    assert.deepEqual([ep.queue, ep.load, ep.inFlight], [4, 9, 2]);
    ep.recordRelease(true, 100, 1010);
    assert.deepEqual([ep.queue, ep.load, ep.inFlight], [3, 8, 1]);
    ep.recordScrape(snapshot({ waiting: 0, running: 1 }), 1050);
    assert.deepEqual([ep.queue, ep.load, ep.inFlight], [0, 1, 1]);
  });

  test('a scrape takes off what was counted when it was sent: what was sent or finished while it was on its way still counts', () => {
    const cache = { blockSize: 16, numGpuBlocks: 100 }; // 1600 tokens
    const ep = endpoint(1, cache);
    ep.recordPick(160);
    ep.recordPick(160);
    let seen = ep.sentSinceScrape();
    ep.recordPick(160); // after the page was asked for
    ep.recordScrape(snapshot({ waiting: 2, kvCacheUsage: 0.2, ...cache }), 1050, 30, seen);
    assert.deepEqual([ep.queue, ep.load, ep.inFlight], [3, 3, 3]);
    assert.ok(Math.abs(ep.kvCacheUsage - 0.3) < 1e-12);
    seen = ep.sentSinceScrape();
    ep.recordRelease(true, 160, 1060); // one finished after the page showed it
    ep.recordScrape(snapshot({ waiting: 3, kvCacheUsage: 0.3, ...cache }), 1100, 30, seen);
    assert.deepEqual([ep.queue, ep.load, ep.inFlight], [2, 2, 2]);
    assert.ok(Math.abs(ep.kvCacheUsage - 0.2) < 1e-12);
    // One that never reached the server came off its count already: the next pick counts in full.
    ep.recordPick(1);
    seen = ep.sentSinceScrape();
    ep.recordRelease(false, 1, 1110);
    ep.recordScrape(snapshot(), 1150, 30, seen);
    ep.recordPick(1);
    assert.equal(ep.queue, 1);
  });

  test("prompt characters per token: the characters sent against what the engine's prompt-token counter went up by", () => {
    const ep = endpoint(1);
    const scrape = (promptTokensTotal: number | null, at: number) => ep.recordScrape(snapshot({ promptTokensTotal }), at);
    ep.recordPick(10, 400);
    scrape(5000, 1050); // the first reading is where counting starts: nothing learnt yet
    assert.equal(ep.promptCharsPerToken, undefined);
    ep.recordPick(10, 400);
    const seen = ep.sentSinceScrape();
    ep.recordPick(10, 600); // after the page was asked for: the next interval's
    ep.recordScrape(snapshot({ promptTokensTotal: 5200 }), 1100, 30, seen);
    assert.equal(ep.promptCharsPerToken, 2);
    scrape(100, 1150); // the engine restarted: its counter went back, the interval says nothing
    assert.equal(ep.promptCharsPerToken, 2);
    ep.recordPick(10, 900);
    scrape(400, 1200);
    assert.equal(ep.promptCharsPerToken, (400 + 900) / (200 + 300));
    assert.equal(endpoint(2).promptCharsPerToken, undefined, 'without a counter');
  });

  test('queue never goes below 0 and load never below the in-flight count', () => {
    const ep = endpoint(1, { waiting: 1, running: 0 });
    ep.recordPick(1);
    ep.recordPick(1);
    ep.recordPick(1);
    ep.recordScrape(snapshot({ waiting: 0, running: 0 }), 1050); // a scrape that has not seen them yet
    assert.equal(ep.load, 3);
    for (let i = 0; i < 3; i++) ep.recordRelease(true, 1, 1060);
    ep.recordRelease(true, 1, 1060); // a release too many changes nothing
    assert.deepEqual([ep.queue, ep.load, ep.inFlight], [0, 0, 0]);
  });

  test('a request that never reached the server is not counted as done', () => {
    const ep = endpoint(1, { waiting: 0 });
    ep.recordPick(1);
    ep.recordRelease(false, 1, 1010);
    assert.deepEqual([ep.queue, ep.inFlight], [0, 0]);
    assert.equal(ep.answeredAt, 0);
  });

  test('KV usage follows the prompts sent and finished since the scrape when the cache size is known', () => {
    const sized = endpoint(1, { kvCacheUsage: 0.5, blockSize: 16, numGpuBlocks: 100 }); // 1600 tokens
    sized.recordPick(160);
    assert.ok(Math.abs(sized.kvCacheUsage - 0.6) < 1e-12);
    sized.recordRelease(true, 160, 1010);
    assert.equal(sized.kvCacheUsage, 0.5);
    sized.recordRelease(true, 1600, 1010); // a request from before the scrape finished: its blocks are free
    assert.equal(sized.kvCacheUsage, 0);
    sized.recordPick(100_000);
    assert.equal(sized.kvCacheUsage, 1);
    const unsized = endpoint(2, { kvCacheUsage: 0.5 });
    unsized.recordPick(160);
    assert.equal(unsized.kvCacheUsage, 0.5);
  });

  test('eligibility and status: pending, ready, stale, unhealthy, recovered', () => {
    const ep = new EndpointState({ url: 'http://h:1', address: 'h:1' }, 'vllm');
    assert.equal(ep.status(0, 2000), 'pending');
    assert.equal(ep.isEligible(0, 2000), false);
    ep.recordScrape(snapshot(), 1000);
    assert.equal(ep.status(3000, 2000), 'ready');
    assert.equal(ep.isEligible(3000, 2000), true);
    assert.equal(ep.status(3001, 2000), 'stale');
    assert.equal(ep.isEligible(3001, 2000), false);
    for (let i = 1; i < FAILURES_BEFORE_UNHEALTHY; i++) ep.recordScrapeFailure('boom');
    assert.equal(ep.healthy, true);
    ep.recordScrapeFailure('boom');
    assert.equal(ep.status(1000, 2000), 'unhealthy');
    assert.equal(ep.lastError, 'boom');
    ep.recordScrape(snapshot(), 1100);
    assert.equal(ep.status(1100, 2000), 'ready');
    ep.reportDown('connection refused');
    assert.equal(ep.isEligible(1100, 2000), false);
    ep.recordScrape(snapshot(), 1150);
    assert.equal(ep.isEligible(1150, 2000), true);
  });

  test("stale only once the scrape due while its metrics were fresh was read: not for this gateway's own stall", () => {
    const ep = endpoint(1); // scraped at 1000
    ep.scrapeDueAt = 1050; // the scraper's next scrape, not run yet at 4000: this process stalled
    assert.deepEqual([ep.status(4000, 2000), ep.isEligible(4000, 2000)], ['ready', true]);
    // It was read and failed: the next is due past staleAfter.
    ep.recordScrapeFailure('timeout');
    ep.scrapeDueAt = 4050;
    assert.deepEqual([ep.status(4000, 2000), ep.isEligible(4000, 2000)], ['stale', false]);
    ep.scrapeDueAt = 0; // not scraped (the scraper stopped)
    assert.deepEqual([ep.status(3001, 2000), ep.status(3000, 2000)], ['stale', 'ready']);
  });

  test('an absurd running count is not learnt as batch capacity', () => {
    const ep = endpoint(1);
    ep.recordScrape(snapshot({ running: 8 }), 1000);
    ep.recordScrape(snapshot({ running: 1e308 }), 1050);
    ep.recordScrape(snapshot({ running: 8 }), 1100);
    // Before: 1e308 for good, every slot free.
    assert.equal(ep.batchCapacity, 8);
    assert.equal(ep.freeSlots, 8 + 1 - 8);
    ep.recordScrape(snapshot({ running: MAX_LEARNT_CAPACITY }), 1150);
    assert.equal(ep.batchCapacity, MAX_LEARNT_CAPACITY);
  });

  test('estimateTokens: the given count, else 4 characters a token of the whole prompt', () => {
    assert.equal(estimateTokens({ promptTokens: 7, prompt: 'x'.repeat(100) }), 7);
    assert.equal(estimateTokens({ prompt: 'x'.repeat(10) }), 3);
    assert.equal(estimateTokens({ prompt: 'x'.repeat(10), promptChars: 1000 }), 250);
  });
});

test('after its rest, a failing endpoint takes one request at a time until an answer says how it went (half-open)', () => {
  const now = 10_000;
  const ep = endpoint(1, {}, now);
  ep.recordAnswered(now, 503);
  assert.equal(ep.resting(now + 100), false, 'its rest is over');
  ep.recordPick(10);
  assert.equal(ep.resting(now + 101), true, 'one request is trying it');
  ep.recordRelease(true, 10, now + 150, 503);
  assert.equal(ep.resting(now + 151), true, 'failed again: rests twice as long');
  assert.equal(ep.resting(now + 350), false);
  ep.recordPick(10);
  ep.recordRelease(false, 10, now + 360);
  assert.equal(ep.resting(now + 361), false, 'a try that never reached it lets another try');
  ep.recordPick(10);
  ep.recordRelease(true, 10, now + 400, 200);
  ep.recordPick(10);
  assert.equal(ep.resting(now + 401), false, 'a good answer ends it: requests go as to any endpoint');
});
