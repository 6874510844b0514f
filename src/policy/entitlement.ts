// What every policy that identifies an app's key shares (VerifyAPIKey, OAuthV2's VerifyAccessToken): whether the key
// may be used now, and entitlement — the first product, in the app's order, whose operation set covers the request.
import type { RequestContext } from '../gateway/context.js';
import { policyFault } from '../gateway/errors.js';
import { clipName } from '../lib/clip-name.js';
import { OBJECTIVE_HEADER } from '../gateway/resolve-model.js';
import type { KeyRecord, OperationSetGrant } from './identity.js';
import type { ApimState } from './types.js';

export type KeyProblem = 'not-approved' | 'expired' | 'app-not-approved';

/** Why this key may not call now, or null; each policy maps the reason to its own fault code. */
export function keyProblem(record: KeyRecord, now: number): KeyProblem | null {
  if (record.status !== 'approved') return 'not-approved';
  if (record.expiresAt !== null && record.expiresAt <= now) return 'expired';
  if (record.appStatus !== 'approved' || record.developerStatus !== 'active') return 'app-not-approved';
  return null;
}

/** The InferenceObjective the request names, if any: the client's choice of its own priority. */
function objectiveOf(ctx: RequestContext): string | undefined {
  const name = ctx.headers[OBJECTIVE_HEADER];
  return typeof name === 'string' ? name : undefined;
}

function covers(set: OperationSetGrant, ctx: RequestContext, objective: string | undefined): boolean {
  // A request without a model is covered only by sets that do not restrict models. An objective restriction lets a
  // product's callers choose only its priorities: a cheap, sheddable tier cannot name a critical objective.
  return (
    set.matches(ctx.method, ctx.path) &&
    (set.models === null || (ctx.model !== undefined && set.models.has(ctx.model))) &&
    (set.objectives === null || objective === undefined || set.objectives.has(objective))
  );
}

/**
 * Records the deciding product and operation set on `state` (state.key is set); throws 401 `faultCode` when no
 * approved product of the key covers the request.
 */
export function entitle(ctx: RequestContext, state: ApimState, faultCode: string, credential: string): void {
  const objective = objectiveOf(ctx);
  for (const product of state.key!.products) {
    if (product.status !== 'approved') continue;
    for (const set of product.operationSets) {
      if (!covers(set, ctx, objective)) continue;
      state.product = product;
      state.operationSet = set;
      return;
    }
  }
  // The path, model and objective are the client's: quoted whole, a 1 MB model name made a 1 MB answer.
  let what = `${ctx.method} ${clipName(ctx.path)}`;
  if (ctx.model !== undefined) what += ` with model "${clipName(ctx.model)}"`;
  if (objective !== undefined) what += ` and objective "${clipName(objective)}"`;
  throw policyFault(401, faultCode, `Invalid ${credential} for given resource: no API product of this ${credential} grants ${what}`);
}
