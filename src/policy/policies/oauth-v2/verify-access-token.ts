// OAuthV2 VerifyAccessToken: `Authorization: Bearer tgat_…` identifies the key the token was issued to, exactly as
// VerifyAPIKey identifies a key, so entitlement and quotas work unchanged.
import type { RequestContext } from '../../../gateway/context.js';
import { gatewayError, policyFault } from '../../../gateway/errors.js';
import { withTimeout } from '../../../lib/with-timeout.js';
import { hashKey } from '../../../store/keys.js';
import { TOKEN_TABLE_TIMEOUT_MS, type AccessTokenGrant, type AccessTokenSource } from '../../access-token-source.js';
import { keyProblem } from '../../entitlement.js';
import type { IdentitySource } from '../../identity.js';
import type { ApimState } from '../../types.js';
import { setVariable } from '../../variables.js';
import { ACCESS_TOKEN_PREFIX } from './generate-access-token.js';
import { OAUTH_V2_FAULTS as F } from './oauth-v2-faults.js';

export interface VerifyOptions {
  /** The token must hold at least one of these; null: no scope is required. */
  scopes: readonly string[] | null;
  /** The flow variable that receives the token's scopes. */
  scopeVariable: string;
  identity: IdentitySource;
  tokens: AccessTokenSource;
  now: () => number;
}

const BEARER = /^bearer\s+(\S+)\s*$/i;

// RFC 6750 §3: every refusal challenges for a Bearer token; no error code when none was sent (§3.1).
const REALM = 'Bearer realm="tollgate"';
const NO_TOKEN = { 'www-authenticate': REALM };
const INVALID_TOKEN = { 'www-authenticate': `${REALM}, error="invalid_token"` };
/** Also for a token no product entitles to the request: it lacks the privileges, though Apigee answers 401. */
export const INSUFFICIENT_SCOPE = { 'www-authenticate': `${REALM}, error="insufficient_scope"` };

function invalidToken(code: string, message: string) {
  return policyFault(401, code, message, INVALID_TOKEN);
}

/** The authenticate step: synchronous when the token is in this replica's cache. */
export function verifyAccessToken(o: VerifyOptions): (ctx: RequestContext, state: ApimState) => void | Promise<void> {
  function check(grant: AccessTokenGrant | undefined, state: ApimState): void {
    if (!grant) throw invalidToken(F.invalidAccessToken, 'Invalid access token');
    const now = o.now();
    if (grant.expiresAt <= now) throw invalidToken(F.accessTokenExpired, 'Access token expired');
    const record = o.identity.findKeyByHash(grant.keyHash);
    if (!record) throw invalidToken(F.invalidAccessToken, 'Invalid access token');
    const problem = keyProblem(record, now);
    if (problem === 'not-approved') throw invalidToken(F.accessTokenNotApproved, 'The key this access token was issued to is not approved');
    if (problem === 'expired') throw invalidToken(F.accessTokenExpired, 'Access token expired with its key');
    if (problem === 'app-not-approved') throw invalidToken(F.appNotApproved, 'The app or its developer is not approved');
    if (o.scopes && !o.scopes.some((s) => grant.scopes.includes(s))) {
      throw policyFault(403, F.insufficientScope, `Required scope(s): ${o.scopes.join(' ')}`, INSUFFICIENT_SCOPE);
    }
    state.key = record;
    setVariable(state, o.scopeVariable, grant.scopes.join(' '));
  }

  return (ctx, state) => {
    const auth = ctx.headers.authorization;
    const m = auth === undefined ? null : BEARER.exec(auth);
    if (!m) throw policyFault(401, F.invalidAccessTokenHeader, 'Invalid access token: send it as Authorization: Bearer', NO_TOKEN);
    if (!m[1].startsWith(ACCESS_TOKEN_PREFIX)) throw invalidToken(F.invalidAccessToken, 'Invalid access token');
    let found: ReturnType<AccessTokenSource['find']>;
    try {
      found = o.tokens.find(hashKey(m[1]));
    } catch {
      throw storeDown();
    }
    if (!(found instanceof Promise)) return check(found, state);
    // The lookup itself runs on and stays shared (the cache holds it until it settles): only this request stops waiting.
    return withTimeout(found, TOKEN_TABLE_TIMEOUT_MS, 'the access-token lookup').then(
      (grant) => check(grant, state),
      () => Promise.reject(storeDown()),
    );
  };
}

function storeDown() {
  return gatewayError('TG_ERR_EXTENSION_FAILED', 'Access tokens cannot be checked: the token store does not answer');
}
