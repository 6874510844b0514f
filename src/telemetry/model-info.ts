// tollgate_model_info{model_name,pool} = 1 for every configured model: the Inference Extension's request series are
// labelled by model only, and this info metric lets PromQL sum them by pool (`* on (model_name) group_left (pool)`)
// without a pool label on every request's series. Read from the live configuration at each scrape.
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
