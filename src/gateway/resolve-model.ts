// Which model, target model, pool and priority a request gets: HTTPRoute rules first (when any exist),
// then the model name from the body (InferenceModel / InferenceModelRewrite), then the objective header.
import type { RouteBackend, RouteRule, RuntimeConfig } from '../config/runtime-config.js';
import { gatewayError } from './errors.js';
import type { RequestContext } from './context.js';

export const OBJECTIVE_HEADER = 'x-gateway-inference-objective';
export const FAIRNESS_HEADER = 'x-gateway-inference-fairness-id';

function ruleMatches(rule: RouteRule, ctx: RequestContext): boolean {
  if (rule.matches.length === 0) return true;
  return rule.matches.some((m) => {
    if (m.method && m.method.toUpperCase() !== ctx.method) return false;
    if (m.path) {
      const p = m.path.value;
      if (m.path.type === 'Exact' ? ctx.path !== p : !(ctx.path === p || ctx.path.startsWith(p.endsWith('/') ? p : `${p}/`))) return false;
    }
    if (m.headers) for (const h of m.headers) if (ctx.headers[h.name.toLowerCase()] !== h.value) return false;
    return true;
  });
}

/** The backend an HTTPRoute sends this request to, or undefined when no route matches (or none exist). */
export function matchRoute(config: RuntimeConfig, ctx: RequestContext): RouteBackend | undefined {
  for (const rule of config.routes) if (ruleMatches(rule, ctx)) return rule.backends.pick();
  return undefined;
}

/** Sets ctx.modelConfig, targetModel, priority; throws 404 for an unknown model. */
export function resolveModel(config: RuntimeConfig, ctx: RequestContext): void {
  const model = ctx.model!;
  const mc = config.models.get(model);
  if (!mc) throw gatewayError('TG_ERR_MODEL_NOT_FOUND', `The model "${model}" does not exist`);
  if (ctx.backend?.kind === 'pool' && ctx.backend.pool !== mc.pool) {
    throw gatewayError('TG_ERR_MODEL_NOT_FOUND', `The model "${model}" is not served by InferencePool "${ctx.backend.pool.name}"`);
  }
  ctx.modelConfig = mc;
  const target = mc.target ? mc.target.pick() : model;
  ctx.targetModel = target;
  if (target !== model) ctx.bodyChanged = true;
  ctx.priority = mc.priority;
  const objectiveName = ctx.headers[OBJECTIVE_HEADER];
  if (typeof objectiveName === 'string') {
    const objective = config.objectives.get(objectiveName);
    if (objective && objective.pool === mc.pool.name) ctx.priority = objective.priority;
  }
}
