import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { EndpointState } from './endpoint-state.js';
import type { MetricsSource } from './metrics-source.js';
import type { SchedulerSettings } from './plugin-types.js';
import { Scheduler } from './scheduler.js';
import { effectiveScrapeInterval, firstScrapesWithin, scrapeSettings } from './scrape-budget.js';
import { Scraper } from './scraper.js';
import { waitFor } from '../sim/testing.js';
import { SETTINGS, captureLogger, pool, request, vllmPage } from './testing.js';

const urls = (n: number) => Array.from({ length: n }, (_, i) => `http://10.${i >> 8}.${i & 255}.1:8000`);

/** Answers every /metrics at once with an idle vLLM's page, noting when each endpoint was asked. */
function idleFleet(): MetricsSource & { asked: Map<string, number[]> } {
  const asked = new Map<string, number[]>();
  const page = vllmPage();
  return {
    asked,
    fetch: async (url) => {
      let times = asked.get(url);
      if (!times) asked.set(url, (times = []));
      times.push(performance.now());
      return { text: page };
    },
    retain: () => {},
    close: async () => {},
  };
}

describe('the scrape budget', () => {
  test('the interval stretches to endpoints ÷ maxScrapesPerSecond, staleAfter to four of it; small fleets keep their settings', () => {
    const s: SchedulerSettings = { ...SETTINGS, scrapeInterval: 50, staleAfter: 2000, maxScrapesPerSecond: 1000 };
    assert.equal(effectiveScrapeInterval(s, 50), 50);
    assert.equal(scrapeSettings(s, 50), s, 'within the budget: the configured settings themselves');
    assert.equal(effectiveScrapeInterval(s, 500), 500);
    assert.equal(effectiveScrapeInterval(s, 333), 333);
    const stretched = scrapeSettings(s, 1000);
    assert.equal(stretched.scrapeInterval, 1000);
    assert.equal(stretched.staleAfter, 4000, 'four stretched intervals');
    assert.equal(stretched.saturation, s.saturation);
    assert.equal(scrapeSettings(s, 400).staleAfter, 2000, 'a staleAfter already longer is kept');
    // A configured interval longer than the budget needs is not shortened.
    assert.equal(scrapeSettings({ ...s, scrapeInterval: 2000, staleAfter: 4000 }, 1000).scrapeInterval, 2000);
  });

  test('first scrapes are spread over the time the budget takes for them', () => {
    const s: SchedulerSettings = { ...SETTINGS, maxScrapesPerSecond: 1000 };
    assert.equal(firstScrapesWithin(s, 2), 2);
    assert.equal(firstScrapesWithin(scrapeSettings(s, 500), 500), 500);
  });

  test('a scraper spreads its first scrapes over the window it is given instead of sending them all at once', () => {
    const n = 100;
    let k = 0;
    const scraper = new Scraper({ source: idleFleet(), intervalMs: 100, now: () => 5000, random: () => (k++ % n) / n });
    const eps = urls(n).map((url) => new EndpointState({ url, address: new URL(url).host }, 'vllm'));
    for (const ep of eps) scraper.watch(ep, () => {});
    scraper.setPace(100, 100);
    scraper.start();
    try {
      const due = eps.map((ep) => ep.scrapeDueAt).sort((a, b) => a - b);
      // Before: every first scrape was due at 5000, at once.
      assert.equal(due[0], 5000);
      assert.equal(due[n - 1], 5099);
      assert.equal(new Set(due).size, n);
    } finally {
      scraper.stop();
    }
  });

  test('a large fleet is scraped within maxScrapesPerSecond: each endpoint no more often than endpoints ÷ budget', async () => {
    const source = idleFleet();
    const { logger, lines } = captureLogger();
    // 200 endpoints at 5 ms would be 40,000 scrapes a second; the budget of 2000 makes it one every 100 ms each.
    const scheduler = new Scheduler({ settings: { ...SETTINGS, scrapeInterval: 5, maxScrapesPerSecond: 2000 }, metricsSource: source, logger });
    scheduler.update(new Map([['p', pool('p', urls(200))]]));
    assert.equal(scheduler.view('p')!.scrapeIntervalMs, 100);
    const told = lines.find((l) => String(l.msg).startsWith('scrape interval stretched'));
    assert.equal(told?.scrapeIntervalMs, 100);
    assert.equal(told?.endpoints, 200);
    scheduler.start();
    try {
      await waitFor(() => source.asked.size === 200 && [...source.asked.values()].every((t) => t.length >= 3), 10_000, 'three scrapes of each endpoint');
    } finally {
      await scheduler.stop();
    }
    let shortest = Infinity;
    for (const times of source.asked.values()) for (let i = 1; i < times.length; i++) shortest = Math.min(shortest, times[i] - times[i - 1]);
    // Timers may fire a millisecond before the clock reads their time. Before: ~5 ms.
    assert.ok(shortest >= 98, `endpoints scraped ${shortest.toFixed(1)} ms apart`);
  });

  test('a reload that adds or removes endpoints stretches or restores the interval', async () => {
    const { logger, lines } = captureLogger();
    const scheduler = new Scheduler({ settings: SETTINGS, metricsSource: idleFleet(), logger });
    scheduler.update(new Map([['p', pool('p', urls(10))]]));
    assert.equal(scheduler.view('p')!.scrapeIntervalMs, 50);
    scheduler.update(new Map([['p', pool('p', urls(10))], ['q', pool('q', urls(1990))]]));
    assert.deepEqual(scheduler.view().map((p) => p.scrapeIntervalMs), [2000, 2000], 'one budget for the whole gateway');
    assert.equal(lines.filter((l) => String(l.msg).startsWith('scrape interval stretched')).length, 1);
    scheduler.update(new Map([['p', pool('p', urls(10))]]));
    assert.equal(scheduler.view('p')!.scrapeIntervalMs, 50);
    await scheduler.stop();
  });

  test('an idle endpoint scraped on a stretched interval is neither stale nor unfresh: its pool has room, sheddable requests go', async () => {
    let now = 1_000_000;
    const scheduler = new Scheduler({ settings: SETTINGS, now: () => now, random: () => 0, metricsSource: idleFleet() });
    // 1000 endpoints within the default 1000 scrapes a second: one scrape a second each, stale after 4 s.
    const p = pool('p', urls(1000));
    scheduler.update(new Map([['p', p]]));
    await scheduler.refresh();
    // Before: metrics older than 200 ms read as unfresh, so the idle pool was saturated and sheddable requests got 429.
    now += 900;
    assert.equal(scheduler.view('p')!.saturated, false);
    const pick = await scheduler.pick(request(p, { priority: -1 }));
    assert.equal(pick.endpoints.length > 0, true);
    // Before: stale past the configured 2 s, though the next scrape was not even due.
    now += 1700;
    assert.equal(scheduler.view('p')!.endpoints.every((e) => e.status === 'ready'), true);
    now += 2000;
    assert.equal(scheduler.view('p')!.endpoints[0].status, 'stale', 'past four stretched intervals');
    await scheduler.stop();
  });
});
