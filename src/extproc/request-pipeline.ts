// The request path up to the upstream call, as the data plane's handler runs it (intercept, the models list, the
// quota report, route and method checks, then `decide`), for a request that came in as ext_proc messages.
import type { RequestContext } from '../gateway/context.js';
import { routeRequest, type Decision, type DataPlane } from '../gateway/data-plane.js';
import type { OnClientGone } from '../gateway/client-pick-request.js';
import { bodyTooLarge } from '../gateway/body.js';
import { gatewayError, type ErrorResponse } from '../gateway/errors.js';
import type { DirectResponse, GatewayHooks } from '../gateway/hooks.js';
import { isModelsRequest, modelsAnswer } from '../gateway/models-list.js';
import { assertSafePath } from '../gateway/safe-path.js';

/** Either a local reply, or where the request goes (which the data plane would forward). */
export type Outcome = { kind: 'reply'; response: ErrorResponse | DirectResponse } | Exclude<Decision, { kind: 'direct' }>;

const NO_HOOKS: GatewayHooks = {};
const JSON_TYPE = { 'content-type': 'application/json' };

/**
 * Throws a GatewayError to refuse, as `decide` does, with the configuration and hooks the request started with
 * (ctx.config and ctx.hooks, taken with its headers) whatever a reload installed since. `readBody` resolves with the
 * whole body once Envoy has sent it (or rejects with 413). GET /v1/models is answered here in every role, as the
 * data plane answers it: passed on, a model server's own list showed a key every model it serves, other tenants'
 * adapters among them. `onGone`: the stream was cancelled (Envoy's client went away) while the request waited in the
 * flow-control queue.
 */
export async function decideRequest(
  dp: DataPlane,
  ctx: RequestContext,
  readBody: () => Promise<Buffer>,
  created: number,
  onGone?: OnClientGone,
): Promise<Outcome> {
  const config = ctx.config!;
  const hooks = ctx.stages === 'picker' ? NO_HOOKS : ctx.hooks!;
  const models = isModelsRequest(ctx.method, ctx.path);
  // An encoded separator is harmless only in an answer tollgate gives itself (data-plane.ts); one Envoy forwards is not.
  if (!models) assertSafePath(ctx.path);
  if (hooks.intercept) {
    // Envoy has sent the whole body by then (within server.maxBodyBytes): a lower limit spares its reader the parse.
    ctx.readBody = (maxBytes = Infinity) => readBody().then((body) => (body.length > maxBytes ? Promise.reject(bodyTooLarge(maxBytes)) : body));
    await hooks.intercept(ctx);
    if (ctx.directResponse) return { kind: 'reply', response: ctx.directResponse };
  }
  if (models) {
    await hooks.authenticate?.(ctx);
    return { kind: 'reply', response: modelsAnswer(config, ctx, created, dp.fleet) };
  }
  if (ctx.method === 'GET' && ctx.path === '/v1/tollgate/quota') {
    if (!hooks.quotaReport) throw gatewayError('TG_ERR_ROUTE_NOT_FOUND', 'API keys are not in use on this gateway');
    return { kind: 'reply', response: { status: 200, headers: { ...JSON_TYPE }, body: JSON.stringify(await hooks.quotaReport(ctx)) } };
  }
  routeRequest(config, ctx);
  const decision = await dp.decide(ctx, await readBody(), onGone);
  return decision.kind === 'direct' ? { kind: 'reply', response: decision.response } : decision;
}
