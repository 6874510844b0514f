// Whether a pool has room: the Inference Extension's saturation rule, counting this gateway's picks since the last scrape.
import type { EndpointState } from './endpoint-state.js';
import type { SchedulerSettings } from './plugin-types.js';

/**
 * How old an endpoint's metrics may be and still count as fresh: metricsFreshness, or two scrape intervals and the
 * time its last scrape took when that is longer, but never past staleAfter. Metrics are as fresh as scraping makes
 * them: with a 1 s interval, or a /metrics that takes 230 ms to answer, readings older than 200 ms made an idle fleet
 * look saturated (sheddable requests refused, the others queued) most of the time. Stale past that means scrapes
 * stopped arriving, and an endpoint too stale to be picked is no room: its last idle reading (1 s interval, 2 s
 * staleAfter, a 400 ms /metrics) kept a saturated pool looking free, so nothing was shed or queued. A metricsFreshness
 * above staleAfter is no configuration error (the default 200 ms is above a staleAfter of 50 ms): it stops there too.
 */
function freshFor(ep: EndpointState, settings: SchedulerSettings): number {
  const { saturation, scrapeInterval, staleAfter } = settings;
  return Math.min(staleAfter, Math.max(saturation.metricsFreshness, 2 * scrapeInterval + ep.scrapeMs));
}

/**
 * Whether one endpoint can take another request now: fresh metrics (freshFor), healthy, engine queue ≤
 * queueDepthThreshold, KV-cache usage ≤ kvCacheThreshold (the Inference Extension's rule) and, unless `kept` is null,
 * more free batch slots than `kept` (the slots kept for higher-priority requests) once its batch capacity is known.
 * The last condition holds requests beyond the batches in the gateway's flow-control queue, where priority applies,
 * rather than in an engine's FIFO queue where it does not.
 */
export function hasRoom(ep: EndpointState, now: number, settings: SchedulerSettings, kept: number | null = 0): boolean {
  const s = settings.saturation;
  return (
    ep.scrapedAt > 0 &&
    now - ep.scrapedAt <= freshFor(ep, settings) &&
    ep.healthy &&
    ep.engineQueue <= s.queueDepthThreshold &&
    ep.kvCacheUsage <= s.kvCacheThreshold &&
    (kept === null || ep.freeSlots > kept)
  );
}

/**
 * Saturated (for requests that may not take `kept` batch slots; null: batches not checked) when no endpoint has room
 * (hasRoom). The engine queue includes the requests sent since the last scrape that cannot have started, so a burst
 * saturates the pool before the next scrape shows it. A resting endpoint's room counts only while every eligible
 * endpoint rests, when the healthy filter lets requests go to it: an engine failing every request looks idle.
 */
export function isSaturated(endpoints: readonly EndpointState[], now: number, settings: SchedulerSettings, kept: number | null = 0): boolean {
  const { staleAfter } = settings;
  let restingRoom = false;
  let awake = false;
  for (const ep of endpoints) {
    const resting = ep.resting(now);
    if (hasRoom(ep, now, settings, kept)) {
      if (!resting) return false;
      restingRoom = true;
    } else if (!resting && !awake) awake = ep.isEligible(now, staleAfter);
  }
  return !restingRoom || awake;
}

/**
 * How full the pool is, 1 meaning at the thresholds: the mean over eligible endpoints of
 * max(queue / queueDepthThreshold, KV / kvCacheThreshold) (Inference Extension v1.5). For the fleet view.
 */
export function utilization(endpoints: readonly EndpointState[], now: number, settings: SchedulerSettings): number {
  const { queueDepthThreshold, kvCacheThreshold } = settings.saturation;
  let sum = 0;
  let n = 0;
  for (const ep of endpoints) {
    if (!ep.isEligible(now, settings.staleAfter)) continue;
    sum += Math.max(ratio(ep.queue, queueDepthThreshold), ratio(ep.kvCacheUsage, kvCacheThreshold));
    n++;
  }
  return n === 0 ? 0 : sum / n;
}

function ratio(value: number, threshold: number): number {
  if (threshold > 0) return value / threshold;
  return value > 0 ? Infinity : 0;
}
