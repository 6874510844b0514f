// A data plane without API management, for tests that drive it (or the ext_proc server in front of it) directly:
// its own metrics registry, silent, with the hooks the test listens on.
import { Registry } from 'prom-client';
import type { RuntimeConfig } from '../../src/config/runtime-config.js';
import { DataPlane } from '../../src/gateway/data-plane.js';
import type { GatewayHooks } from '../../src/gateway/hooks.js';
import { UpstreamPools } from '../../src/gateway/upstream-pools.js';
import { silentLogger } from '../../src/lib/logger.js';
import type { EndpointPicker } from '../../src/scheduler/types.js';
import { RequestMetrics } from '../../src/telemetry/request-metrics.js';

export function bareDataPlane(config: RuntimeConfig, picker: EndpointPicker, hooks?: GatewayHooks): DataPlane {
  return new DataPlane({ config, picker, pools: new UpstreamPools(config.settings), metrics: new RequestMetrics(new Registry()), logger: silentLogger, hooks });
}
