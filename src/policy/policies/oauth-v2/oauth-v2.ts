// OAuthV2: the client-credentials token endpoint (GenerateAccessToken, in the intercept phase) and Bearer access
// tokens in place of API keys (VerifyAccessToken, authenticate + entitlement).
import { oauthV2Spec } from '../../../config/apim-kinds.js';
import type { RequestContext } from '../../../gateway/context.js';
import { GatewayError, policyFault } from '../../../gateway/errors.js';
import { parseDuration } from '../../../lib/duration.js';
import { entitle } from '../../entitlement.js';
import type { ApimState, Policy, PolicyFactory } from '../../types.js';
import { tokenEndpoint } from './generate-access-token.js';
import { OAUTH_V2_FAULTS } from './oauth-v2-faults.js';
import { INSUFFICIENT_SCOPE, verifyAccessToken } from './verify-access-token.js';

export { OAUTH_V2_FAULTS } from './oauth-v2-faults.js';

export const OAUTH_V2 = 'oauth-v2';

/**
 * @example oauthV2('token', { operation: 'GenerateAccessToken', expiresIn: '30m' }, deps) — POST /oauth/token;
 * oauthV2('verify-token', { operation: 'VerifyAccessToken', scope: 'chat' }, deps) — Bearer tgat_… with scope chat.
 */
export const oauthV2: PolicyFactory = (name, spec, deps) => {
  const s = oauthV2Spec.parse(spec);
  const tokens = deps.identity.accessTokens;
  if (!tokens) throw new Error('OAuthV2 needs the access-token store, which this engine was built without');
  const { identity, now } = deps;

  if (s.operation === 'GenerateAccessToken') {
    const expiresInMs = parseDuration(s.expiresIn);
    if (expiresInMs < 1000) throw new Error('expiresIn must be at least 1s');
    const intercept = tokenEndpoint({ path: s.tokenPath, grantTypes: new Set(s.supportedGrantTypes), expiresInMs, identity, tokens, now });
    return { type: OAUTH_V2, name, intercept } satisfies Policy;
  }

  const scopes = s.scope ? s.scope.split(' ').filter((x) => x !== '') : null;
  return {
    type: OAUTH_V2,
    name,
    identifiesKey: true,
    authenticate: verifyAccessToken({ scopes, scopeVariable: `oauthv2accesstoken.${name}.scope`, identity, tokens, now }),
    admit(ctx: RequestContext, state: ApimState) {
      // authenticate ran first in the same flow, so the key is known.
      try {
        entitle(ctx, state, OAUTH_V2_FAULTS.noProductMatch, 'access token');
      } catch (err) {
        // A 401 must challenge (RFC 7235 §3.1), here as RFC 6750 §3 does for a Bearer token.
        if (err instanceof GatewayError) throw policyFault(err.status, err.code, err.message, INSUFFICIENT_SCOPE);
        throw err;
      }
    },
  } satisfies Policy;
};
