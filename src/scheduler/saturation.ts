// Whether a pool has room: the Inference Extension's saturation rule, counting this gateway's picks since the last scrape.
import type { EndpointState } from './endpoint-state.js';
import type { SchedulerSettings } from './plugin-types.js';

/**
 * Saturated when no healthy endpoint with metrics at most `metricsFreshness` old has
 * queue ≤ queueDepthThreshold and KV-cache usage ≤ kvCacheThreshold. The queue includes the
 * requests sent since that scrape, so a burst saturates the pool before the next scrape shows it.
 */
export function isSaturated(endpoints: readonly EndpointState[], now: number, s: SchedulerSettings['saturation']): boolean {
  for (const ep of endpoints) {
    if (
      ep.scrapedAt > 0 &&
      now - ep.scrapedAt <= s.metricsFreshness &&
      ep.healthy &&
      ep.queue <= s.queueDepthThreshold &&
      ep.kvCacheUsage <= s.kvCacheThreshold
    ) {
      return false;
    }
  }
  return true;
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
