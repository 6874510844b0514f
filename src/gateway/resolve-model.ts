// Which model, target model, pool and priority a request gets: HTTPRoute rules first (when any exist),
// then the model name from the body (InferenceModel / InferenceModelRewrite), then the objective header.
import type { RouteBackend, RouteRule, RuntimeConfig } from '../config/runtime-config.js';
import { clipName } from '../lib/clip-name.js';
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

/** The request's host as routes match it: the Host header without its port, in lower case (names are case-insensitive). */
function requestHost(ctx: RequestContext): string | undefined {
  const host = ctx.headers.host;
  // An IPv6 literal (`[::1]:8080`) names no host a route can list: Gateway API hostnames are never IP addresses.
  if (!host || host.charCodeAt(0) === 0x5b) return undefined;
  const colon = host.lastIndexOf(':');
  return (colon === -1 ? host : host.slice(0, colon)).toLowerCase();
}

/** Any exact hostname outranks every wildcard (a hostname is at most 253 characters). */
const EXACT_HOSTNAME = 1000;

/**
 * How closely a route's hostnames match the host, by Gateway API's precedence: an exact name over a wildcard, a longer
 * name over a shorter, and any of them over a route without hostnames (0), which matches every host. -1: no match.
 * `*.example.com` matches `a.example.com` and `a.b.example.com`, not `example.com`.
 */
function hostnameRank(hostnames: readonly string[], host: string | undefined): number {
  if (hostnames.length === 0) return 0;
  if (host === undefined) return -1;
  let best = -1;
  for (const name of hostnames) {
    if (name.charCodeAt(0) === 0x2a) {
      if (host.length > name.length - 1 && host.endsWith(name.slice(1))) best = Math.max(best, name.length);
    } else if (name === host) best = Math.max(best, EXACT_HOSTNAME + name.length);
  }
  return best;
}

/**
 * The backend an HTTPRoute sends this request to, or undefined when no route matches (or none exist): among the rules
 * that match, one of the route whose hostname matches most closely, the first in the files' order on a tie. Throws
 * 503 no_healthy_endpoints when that rule's backends all have weight 0.
 */
export function matchRoute(config: RuntimeConfig, ctx: RequestContext): RouteBackend | undefined {
  const host = requestHost(ctx);
  let chosen: RouteRule | undefined;
  let chosenRank = -1;
  for (const rule of config.routes) {
    const rank = hostnameRank(rule.hostnames, host);
    if (rank > chosenRank && ruleMatches(rule, ctx)) {
      chosen = rule;
      chosenRank = rank;
    }
  }
  if (!chosen) return undefined;
  if (!chosen.backends) throw gatewayError('TG_ERR_NO_ENDPOINTS', `HTTPRoute "${chosen.route}" sends this request to no backend: every backendRef of its rule has weight 0`);
  return chosen.backends.pick();
}

/** Sets ctx.modelConfig, targetModel, priority; throws 404 for an unknown model. */
export function resolveModel(config: RuntimeConfig, ctx: RequestContext): void {
  const model = ctx.model!;
  const mc = config.models.get(model);
  // The name as the client sent it, which may be megabytes long: quoted clipped.
  if (!mc) throw gatewayError('TG_ERR_MODEL_NOT_FOUND', `The model "${clipName(model)}" does not exist`);
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
