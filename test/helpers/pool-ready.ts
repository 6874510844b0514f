// Waiting, in a test, for the gateway's endpoint picker to have scraped its fleet, instead of assuming it has.
import type { Gateway } from '../../src/gateway/gateway.js';
import type { EndpointView } from '../../src/scheduler/fleet-view.js';
import { waitFor } from '../../src/sim/testing.js';

/**
 * Resolves once every endpoint of every pool (or of `pool`) passes `check` (by default: ready, so pickable).
 * startGateway waits for one scrape attempt only, which a loaded machine can miss (its deadline is a few hundred ms):
 * a test that posts right after it would then find the endpoint it counts on not yet offered.
 */
export async function untilEndpoints(gw: Gateway, check: (e: EndpointView) => boolean = (e) => e.status === 'ready', pool?: string, timeoutMs = 10_000): Promise<void> {
  const pools = () => (pool === undefined ? gw.picker.view() : [gw.picker.view(pool)!]);
  await waitFor(() => pools().every((p) => p.endpoints.every(check)), timeoutMs, `every endpoint${pool === undefined ? '' : ` of pool ${pool}`} to pass the check`, 10);
}
