// The gateway-wide scrape budget: how far the scrape interval stretches so that all endpoints together stay within it.
import type { SchedulerSettings } from './plugin-types.js';

/**
 * Missed scrapes an endpoint on a stretched interval may go without before it counts as stale. The configured minimum
 * (two intervals) has no room left for a loop that is busy with a large fleet; staleAfter itself is kept when longer.
 */
const STALE_INTERVALS = 4;

/**
 * The interval every endpoint is scraped at: the configured one, or endpoints ÷ maxScrapesPerSecond when that is
 * longer. A scrape costs ~0.3 ms of this process's event loop; 1000 endpoints at 50 ms (20,000 scrapes a second)
 * asked for six loops' worth, so scrapes fell behind and timed out, and idle endpoints went stale and their pools
 * saturated, while every request waited behind the scrapes.
 */
export function effectiveScrapeInterval(settings: SchedulerSettings, endpoints: number): number {
  return Math.max(settings.scrapeInterval, Math.ceil((endpoints * 1000) / settings.maxScrapesPerSecond));
}

/**
 * The settings the picker runs by for `endpoints` endpoints: the configured ones (the same object) while the budget
 * holds them, else with scrapeInterval stretched (effectiveScrapeInterval) and staleAfter at least STALE_INTERVALS of
 * it. Every rule read from them follows: the scrape timeout, metrics freshness for saturation, staleness.
 */
export function scrapeSettings(settings: SchedulerSettings, endpoints: number): SchedulerSettings {
  const interval = effectiveScrapeInterval(settings, endpoints);
  if (interval === settings.scrapeInterval) return settings;
  return { ...settings, scrapeInterval: interval, staleAfter: Math.max(settings.staleAfter, STALE_INTERVALS * interval) };
}

/**
 * How long the first scrapes of `endpoints` endpoints (at a start; the new ones of a reload) are spread over: the time
 * the budget takes for them, which is within one effective interval. All at once, 500 endpoints' first scrapes and
 * model lists went out together, 222 of them timed out and were logged unhealthy, and readiness took 7.5 s.
 */
export function firstScrapesWithin(settings: SchedulerSettings, endpoints: number): number {
  return (endpoints * 1000) / settings.maxScrapesPerSecond;
}
