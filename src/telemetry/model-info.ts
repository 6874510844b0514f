// tollgate_model_info{model_name,pool} = 1 for every configured model: which pools serve it, traffic or not. Not a
// join key for the request series: a model served by two pools matches both (many-to-many); traffic per pool is
// tollgate_pool_* (request-metrics.ts). Read from the live configuration at each scrape.
import { Gauge, type Registry } from 'prom-client';
import type { RuntimeConfig } from '../config/runtime-config.js';

export function registerModelInfo(registry: Registry, config: () => RuntimeConfig): void {
  const info: Gauge<'model_name' | 'pool'> = new Gauge({
    name: 'tollgate_model_info',
    help: 'Configured models and the InferencePool each is served by (always 1)',
    labelNames: ['model_name', 'pool'],
    registers: [registry],
    collect: () => {
      // Reset first: a model removed by a reload leaves the series.
      info.reset();
      for (const served of config().models.values()) for (const m of served) info.set({ model_name: m.name, pool: m.pool.name }, 1);
    },
  });
}
