// Which model, target model, pool and priority a request gets: HTTPRoute rules first (when any exist),
// then the model name from the body (InferenceModel / InferenceModelRewrite), then the objective header.
import type { ModelConfig, RouteBackend, RouteRule, RuntimeConfig } from '../config/runtime-config.js';
import { clipName } from '../lib/clip-name.js';
import { gatewayError } from './errors.js';
import type { RequestContext } from './context.js';

export const OBJECTIVE_HEADER = 'x-gateway-inference-objective';
export const FAIRNESS_HEADER = 'x-gateway-inference-fairness-id';

type RouteMatch = RouteRule['matches'][number];

/** A rule without matches has Gateway API's default one, `PathPrefix /`, which takes every request. */
const MATCH_ALL: readonly RouteMatch[] = [{ path: { type: 'PathPrefix', value: '/' } }];

function matchHolds(m: RouteMatch, ctx: RequestContext): boolean {
  if (m.method && m.method.toUpperCase() !== ctx.method) return false;
  if (m.path) {
    const p = m.path.value;
    if (m.path.type === 'Exact' ? ctx.path !== p : !(ctx.path === p || ctx.path.startsWith(p.endsWith('/') ? p : `${p}/`))) return false;
  }
  if (m.headers) for (const h of m.headers) if (ctx.headers[h.name.toLowerCase()] !== h.value) return false;
  return true;
}

/**
 * Whether match `a` takes precedence over `b` by Gateway API's order (HTTPRouteRule.matches), across rules and
 * routes: an Exact path, then the PathPrefix with the most characters (no path is `/`), then a method match, then
 * the most header matches. A tie is false: the first in the files' order keeps the request.
 */
function outranks(a: RouteMatch, b: RouteMatch): boolean {
  const exact = Number(a.path?.type === 'Exact') - Number(b.path?.type === 'Exact');
  if (exact !== 0) return exact > 0;
  const prefix = (a.path?.value.length ?? 1) - (b.path?.value.length ?? 1);
  if (prefix !== 0) return prefix > 0;
  const method = Number(a.method !== undefined) - Number(b.method !== undefined);
  if (method !== 0) return method > 0;
  return (a.headers?.length ?? 0) > (b.headers?.length ?? 0);
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
 * that match, one of the route whose hostname matches most closely, then the one whose matching match ranks first by
 * Gateway API's precedence (`outranks`), then the first in the files' order. Throws 503 no_healthy_endpoints when that
 * rule's backends all have weight 0.
 */
export function matchRoute(config: RuntimeConfig, ctx: RequestContext): RouteBackend | undefined {
  const host = requestHost(ctx);
  let chosen: RouteRule | undefined;
  let chosenMatch: RouteMatch | undefined;
  let chosenRank = -1;
  for (const rule of config.routes) {
    const rank = hostnameRank(rule.hostnames, host);
    if (rank === -1 || rank < chosenRank) continue;
    for (const m of rule.matches.length === 0 ? MATCH_ALL : rule.matches) {
      if (!matchHolds(m, ctx) || (rank === chosenRank && !outranks(m, chosenMatch!))) continue;
      chosen = rule;
      chosenMatch = m;
      chosenRank = rank;
    }
  }
  if (!chosen) return undefined;
  if (!chosen.backends) throw gatewayError('TG_ERR_NO_ENDPOINTS', `HTTPRoute "${chosen.route}" sends this request to no backend: every backendRef of its rule has weight 0`);
  return chosen.backends.pick();
}

/**
 * The model a request for `model` gets: the one of the pool its HTTPRoute drew, or, routed by the name alone, the one
 * of the pool no HTTPRoute sends to. Throws 404: model_not_found for a name no pool there serves or several do,
 * route_not_found for one served through HTTPRoutes only.
 */
function modelFor(config: RuntimeConfig, ctx: RequestContext, model: string): ModelConfig {
  const served = config.models.get(model);
  // The name as the client sent it, which may be megabytes long: quoted clipped.
  if (!served) throw gatewayError('TG_ERR_MODEL_NOT_FOUND', `The model "${clipName(model)}" does not exist`);
  const backend = ctx.backend;
  if (backend?.kind === 'pool') {
    const mc = served.find((m) => m.pool === backend.pool);
    if (!mc) throw gatewayError('TG_ERR_MODEL_NOT_FOUND', `The model "${model}" is not served by InferencePool "${backend.pool.name}"`);
    return mc;
  }
  // A route limited by hostname or header would limit nothing if its pool could be reached by model name too
  // (Gateway API answers 404 to a request no route matches).
  const open = served.filter((m) => !config.routedPools.has(m.pool));
  if (open.length === 1) return open[0];
  if (open.length === 0) {
    throw gatewayError('TG_ERR_ROUTE_NOT_FOUND', `No route for ${ctx.method} ${ctx.path}: the model "${model}" is served through HTTPRoutes only, and none takes this request`);
  }
  const pools = open.map((m) => `"${m.pool.name}"`).join(', ');
  throw gatewayError('TG_ERR_MODEL_NOT_FOUND', `The model "${model}" is served by several InferencePools (${pools}) and no HTTPRoute chose one`);
}

/** Sets ctx.modelConfig, targetModel, priority; throws 404 for an unknown model (see modelFor). */
export function resolveModel(config: RuntimeConfig, ctx: RequestContext): void {
  const model = ctx.model!;
  const mc = modelFor(config, ctx, model);
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
