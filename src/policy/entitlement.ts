// What every policy that identifies an app's key shares (VerifyAPIKey, OAuthV2's VerifyAccessToken): whether the key
// may be used now, and entitlement — the first product, in the app's order, whose operation set covers the request.
import type { RequestContext } from '../gateway/context.js';
import { policyFault } from '../gateway/errors.js';
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

function covers(set: OperationSetGrant, ctx: RequestContext): boolean {
  // A request without a model is covered only by sets that do not restrict models.
  return set.matches(ctx.method, ctx.path) && (set.models === null || (ctx.model !== undefined && set.models.has(ctx.model)));
}

/**
 * Records the deciding product and operation set on `state` (state.key is set); throws 401 `faultCode` when no
 * approved product of the key covers the request.
 */
export function entitle(ctx: RequestContext, state: ApimState, faultCode: string, credential: string): void {
  for (const product of state.key!.products) {
    if (product.status !== 'approved') continue;
    for (const set of product.operationSets) {
      if (!covers(set, ctx)) continue;
      state.product = product;
      state.operationSet = set;
      return;
    }
  }
  const what = ctx.model === undefined ? `${ctx.method} ${ctx.path}` : `${ctx.method} ${ctx.path} with model "${ctx.model}"`;
  throw policyFault(401, faultCode, `Invalid ${credential} for given resource: no API product of this ${credential} grants ${what}`);
}
