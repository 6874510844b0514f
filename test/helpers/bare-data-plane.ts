// A data plane without API management, for tests that drive it (or the ext_proc server in front of it) directly:
// its own metrics registry, silent, with the hooks the test listens on.
import { Registry } from 'prom-client';
import type { RuntimeConfig } from '../../src/config/runtime-config.js';
import { DataPlane } from '../../src/gateway/data-plane.js';
import type { GatewayHooks } from '../../src/gateway/hooks.js';
import { UpstreamPools } from '../../src/gateway/upstream-pools.js';
import { silentLogger } from '../../src/lib/logger.js';
import { RoundRobinPicker } from '../../src/scheduler/round-robin.js';
import type { EndpointPicker, PickRequest, RequestOutcome } from '../../src/scheduler/types.js';
import { RequestMetrics } from '../../src/telemetry/request-metrics.js';

export function bareDataPlane(config: RuntimeConfig, picker: EndpointPicker, hooks?: GatewayHooks): DataPlane {
  return new DataPlane({ config, picker, pools: new UpstreamPools(config.settings), metrics: new RequestMetrics(new Registry()), logger: silentLogger, hooks });
}

/** Counts what is picked and not yet released, per endpoint. */
export class CountingPicker implements EndpointPicker {
  readonly #inner = new RoundRobinPicker();
  inFlight = 0;
  releases: RequestOutcome[] = [];

  pick(req: PickRequest) {
    const p = this.#inner.pick(req);
    this.inFlight++;
    let released = false;
    return {
      endpoints: p.endpoints,
      release: (endpoint: { address: string }, outcome: RequestOutcome) => {
        this.releases.push(outcome);
        if (!released && endpoint.address === p.endpoints[0].address) {
          released = true;
          this.inFlight--;
        }
      },
    };
  }
}
