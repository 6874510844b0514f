// Whether a pool has room: the Inference Extension's saturation rule, counting this gateway's picks since the last scrape.
import type { EndpointState } from './endpoint-state.js';
import type { SchedulerSettings } from './plugin-types.js';

/**
 * Batch-capacity holding (scheduler-local until GatewaySettings.scheduler.saturation carries it):
 * once an endpoint's batch capacity (max-num-seqs) is known, it only has room while its load (waiting + running +
 * sent since the scrape) is below capacity + batchHeadroom. Requests beyond that wait in the gateway's
 * flow-control queue, where priority and tenant fairness apply, instead of in an engine's FIFO queue where
 * neither does; and sheddable requests are shed as soon as every batch is full.
 */
export interface HoldOptions {
  /** Hold requests in the gateway once every endpoint's batch is full (default true). */
  holdAtBatchCapacity: boolean;
  /** Requests allowed to wait in an engine's own queue beyond its batch capacity (default 0). */
  batchHeadroom: number;
}

export const DEFAULT_HOLD: HoldOptions = { holdAtBatchCapacity: true, batchHeadroom: 0 };

/** Whether one endpoint can take another request now (see isSaturated). */
export function hasRoom(ep: EndpointState, now: number, s: SchedulerSettings['saturation'], hold: HoldOptions = DEFAULT_HOLD): boolean {
  return (
    ep.scrapedAt > 0 &&
    now - ep.scrapedAt <= s.metricsFreshness &&
    ep.healthy &&
    ep.queue <= s.queueDepthThreshold &&
    ep.kvCacheUsage <= s.kvCacheThreshold &&
    (!hold.holdAtBatchCapacity || ep.freeSlots > -hold.batchHeadroom)
  );
}

/**
 * Saturated when no healthy endpoint with metrics at most `metricsFreshness` old has
 * queue ≤ queueDepthThreshold and KV-cache usage ≤ kvCacheThreshold — and, with `hold`, a free batch slot
 * once its batch capacity is known. The queue includes the requests sent since that scrape, so a burst saturates
 * the pool before the next scrape shows it.
 */
export function isSaturated(endpoints: readonly EndpointState[], now: number, s: SchedulerSettings['saturation'], hold: HoldOptions = DEFAULT_HOLD): boolean {
  for (const ep of endpoints) if (hasRoom(ep, now, s, hold)) return false;
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
