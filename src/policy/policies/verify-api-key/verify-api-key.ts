// VerifyAPIKey: who is calling (the key, its app and developer) and, once the model is known, whether the key's
// products grant this request — the first product, in the app's order, whose operation set covers it decides.
import { verifyApiKeySpec } from '../../../config/apim-kinds.js';
import type { RequestContext } from '../../../gateway/context.js';
import { policyFault } from '../../../gateway/errors.js';
import { hashKey } from '../../../store/keys.js';
import { readApiKey } from '../../api-key.js';
import { entitle, keyProblem } from '../../entitlement.js';
import type { ApimState, Policy, PolicyFactory } from '../../types.js';
import { compileCredential } from '../../variables.js';

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

/**
 * @example verifyApiKey('verify-key', {}, deps) — the key from `x-api-key` or `Authorization: Bearer`;
 * verifyApiKey('verify-key', { apiKey: { ref: 'request.header.x-key' } }, deps) — from another header.
 */
export const verifyApiKey: PolicyFactory = (name, spec, deps) => {
  const s = verifyApiKeySpec.parse(spec ?? {});
  // The standard headers never go upstream (NOT_FORWARDED); one named here is withheld like them.
  const source = s.apiKey ? compileCredential(s.apiKey.ref) : null;
  const read = source ? source.read : (ctx: RequestContext) => readApiKey(ctx.headers);
  const { identity, now } = deps;
  return {
    type: VERIFY_API_KEY,
    name,
    identifiesKey: true,
    authenticate(ctx: RequestContext, state: ApimState) {
      const key = read(ctx, state);
      source?.withhold(ctx);
      if (!key) throw policyFault(401, F.failedToResolveApiKey, 'Failed to resolve API Key: send it as x-api-key or Authorization: Bearer');
      const record = identity.findKeyByHash(hashKey(key));
      if (!record) throw policyFault(401, F.invalidApiKey, 'Invalid ApiKey');
      const problem = keyProblem(record, now());
      if (problem === 'not-approved') throw policyFault(401, F.apiKeyNotApproved, `ApiKey not approved (${record.status})`);
      if (problem === 'expired') throw policyFault(401, F.consumerKeyExpired, 'The consumer key has expired');
      if (problem === 'app-not-approved') throw policyFault(401, F.appNotApproved, 'The app or its developer is not approved');
      state.key = record;
    },
    admit(ctx: RequestContext, state: ApimState) {
      // authenticate ran first in the same flow, so the key is known.
      entitle(ctx, state, F.invalidApiKeyForGivenResource, 'ApiKey');
    },
  } satisfies Policy;
};
