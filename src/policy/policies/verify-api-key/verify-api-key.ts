// VerifyAPIKey: who is calling (the key, its app and developer) and, once the model is known, whether the key's
// products grant this request — the first product, in the app's order, whose operation set covers it decides.
import { verifyApiKeySpec } from '../../../config/apim-kinds.js';
import type { RequestContext } from '../../../gateway/context.js';
import { policyFault } from '../../../gateway/errors.js';
import { hashKey } from '../../../store/keys.js';
import { readApiKey } from '../../api-key.js';
import type { OperationSetGrant } from '../../identity.js';
import type { ApimState, Policy, PolicyFactory } from '../../types.js';
import { compileVariable } from '../../variables.js';

export const VERIFY_API_KEY = 'verify-api-key';

export const VERIFY_API_KEY_FAULTS = {
  invalidApiKey: 'oauth.v2.InvalidApiKey',
  failedToResolveApiKey: 'steps.oauth.v2.FailedToResolveAPIKey',
  apiKeyNotApproved: 'oauth.v2.ApiKeyNotApproved',
  consumerKeyExpired: 'keymanagement.service.consumer_key_expired',
  appNotApproved: 'keymanagement.service.invalid_client-app_not_approved',
  invalidApiKeyForGivenResource: 'oauth.v2.InvalidApiKeyForGivenResource',
} as const;

const F = VERIFY_API_KEY_FAULTS;

function covers(set: OperationSetGrant, ctx: RequestContext): boolean {
  // A request without a model is covered only by sets that do not restrict models.
  return set.matches(ctx.method, ctx.path) && (set.models === null || (ctx.model !== undefined && set.models.has(ctx.model)));
}

/**
 * @example verifyApiKey('verify-key', {}, deps) — the key from `x-api-key` or `Authorization: Bearer`;
 * verifyApiKey('verify-key', { apiKey: { ref: 'request.header.x-key' } }, deps) — from another header.
 */
export const verifyApiKey: PolicyFactory = (name, spec, deps) => {
  const s = verifyApiKeySpec.parse(spec ?? {});
  const read = s.apiKey ? compileVariable(s.apiKey.ref) : (ctx: RequestContext) => readApiKey(ctx.headers);
  const { identity, now } = deps;
  return {
    type: VERIFY_API_KEY,
    name,
    authenticate(ctx: RequestContext, state: ApimState) {
      const key = read(ctx, state);
      if (!key) throw policyFault(401, F.failedToResolveApiKey, 'Failed to resolve API Key: send it as x-api-key or Authorization: Bearer');
      const record = identity.findKeyByHash(hashKey(key));
      if (!record) throw policyFault(401, F.invalidApiKey, 'Invalid ApiKey');
      if (record.status !== 'approved') throw policyFault(401, F.apiKeyNotApproved, `ApiKey not approved (${record.status})`);
      if (record.expiresAt !== null && record.expiresAt <= now()) throw policyFault(401, F.consumerKeyExpired, 'The consumer key has expired');
      if (record.appStatus !== 'approved' || record.developerStatus !== 'active') {
        throw policyFault(401, F.appNotApproved, 'The app or its developer is not approved');
      }
      state.key = record;
    },
    admit(ctx: RequestContext, state: ApimState) {
      // authenticate ran first in the same flow, so the key is known.
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
      throw policyFault(401, F.invalidApiKeyForGivenResource, `Invalid ApiKey for given resource: no API product of this key grants ${what}`);
    },
  } satisfies Policy;
};
