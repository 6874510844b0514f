// GET /v1/models: the models this gateway serves, from configuration, in OpenAI's list shape.
import type { RuntimeConfig } from '../config/runtime-config.js';

export function modelsListBody(config: RuntimeConfig, created: number): string {
  const data = [...config.models.values()].map((m) => ({ id: m.name, object: 'model', created, owned_by: 'tollgate', pool: m.pool.name }));
  return JSON.stringify({ object: 'list', data });
}
