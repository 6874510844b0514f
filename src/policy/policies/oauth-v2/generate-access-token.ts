// OAuthV2 GenerateAccessToken: the client-credentials token endpoint on the data plane. The client is an app's key
// (client_id = consumer key, client_secret = consumer secret); the answer is an opaque `tgat_` token whose hash is
// stored where every replica can find it.
import type { RequestContext } from '../../../gateway/context.js';
import { gatewayError } from '../../../gateway/errors.js';
import { clipName } from '../../../lib/clip-name.js';
import { withTimeout } from '../../../lib/with-timeout.js';
import { hashKey, randomBase62, verifySecret } from '../../../store/keys.js';
import { TOKEN_TABLE_TIMEOUT_MS, type AccessTokenSource } from '../../access-token-source.js';
import { keyProblem, type KeyProblem } from '../../entitlement.js';
import type { IdentitySource, KeyRecord } from '../../identity.js';
import { MalformedTokenRequest, readTokenRequest, UnreadableBasicCredentials, type TokenRequest } from './client-credentials.js';
import { OAUTH_V2_FAULTS as F } from './oauth-v2-faults.js';
import { TokenEndpointError } from './token-error.js';

export const ACCESS_TOKEN_PREFIX = 'tgat_';

export interface TokenEndpointOptions {
  path: string;
  grantTypes: ReadonlySet<string>;
  expiresInMs: number;
  identity: IdentitySource;
  tokens: AccessTokenSource;
  now: () => number;
}

/**
 * A token request is a few hundred bytes, and anyone may send one: read up to the model-request limit (10 MiB), a
 * form of empty parameters took 250 MB and most of a second to parse, before any credential was checked. A larger
 * body gets 413 (body_too_large) instead, unparsed.
 */
const MAX_TOKEN_REQUEST_BYTES = 16 * 1024;

/** Compared against when the client is unknown, so a miss costs the same as a wrong secret. */
const NO_SECRET = hashKey('no secret');

const NO_STORE = { 'content-type': 'application/json', 'cache-control': 'no-store', pragma: 'no-cache' };

/** Each its own: a developer told "not approved" about a key that had expired chased an approval instead of a new key. */
const KEY_REFUSED: Record<KeyProblem, string> = {
  'not-approved': 'Client authentication failed: the key is not approved',
  expired: 'Client authentication failed: the key has expired',
  'app-not-approved': 'Client authentication failed: the app or its developer is not approved',
};

function invalidClient(basic: boolean, message: string): TokenEndpointError {
  return new TokenEndpointError(401, F.invalidClient, message, basic ? { 'www-authenticate': 'Basic realm="tollgate"' } : undefined);
}

/** The scopes of the key's approved products: what a token may carry. */
function offeredScopes(record: KeyRecord): Set<string> {
  const out = new Set<string>();
  for (const p of record.products) if (p.status === 'approved') for (const s of p.scopes ?? []) out.add(s);
  return out;
}

/** The intercept step: answers POST <path>, lets every other request through untouched. */
export function tokenEndpoint(o: TokenEndpointOptions): (ctx: RequestContext) => Promise<void> | void {
  async function issue(ctx: RequestContext): Promise<void> {
    let req: TokenRequest;
    try {
      req = readTokenRequest(ctx.headers, ctx.readBody ? await ctx.readBody(MAX_TOKEN_REQUEST_BYTES) : Buffer.alloc(0));
    } catch (err) {
      if (err instanceof MalformedTokenRequest) throw new TokenEndpointError(400, F.invalidRequest, `Invalid token request: ${err.message}`);
      if (err instanceof UnreadableBasicCredentials) throw invalidClient(true, `Client authentication failed: ${err.message}`);
      throw err;
    }
    if (req.grantType === undefined) throw new TokenEndpointError(400, F.invalidRequest, 'The request is missing a required parameter: grant_type');
    if (!o.grantTypes.has(req.grantType)) throw new TokenEndpointError(400, F.unsupportedGrantType, `Unsupported grant type: ${clipName(req.grantType)}`);
    if (!req.clientId || !req.clientSecret) throw invalidClient(req.basic, 'Client authentication failed: client_id and client_secret are required');
    const record = o.identity.findKeyByHash(hashKey(req.clientId));
    const secretOk = verifySecret(req.clientSecret, record?.secretHash ?? NO_SECRET);
    const now = o.now();
    if (!record || !record.secretHash || !secretOk) throw invalidClient(req.basic, 'Client authentication failed: unknown client or wrong secret');
    const problem = keyProblem(record, now);
    if (problem !== null) throw invalidClient(req.basic, KEY_REFUSED[problem]);

    const offered = offeredScopes(record);
    const missing = req.scopes.filter((s) => !offered.has(s));
    if (missing.length > 0) throw new TokenEndpointError(400, F.invalidScope, `The client may not ask for scope ${clipName(missing.join(' '))}`);
    const scopes = req.scopes.length > 0 ? [...new Set(req.scopes)] : [...offered];

    const token = ACCESS_TOKEN_PREFIX + randomBase62(40);
    // A token never outlives the key it was issued to.
    const expiresAt = record.expiresAt === null ? now + o.expiresInMs : Math.min(now + o.expiresInMs, record.expiresAt);
    try {
      // A save that lands after the deadline leaves a token nobody was given: harmless, it expires unused.
      await withTimeout(o.tokens.save({ tokenHash: hashKey(token), keyId: record.keyId, keyHash: hashKey(req.clientId), scopes, issuedAt: now, expiresAt }), TOKEN_TABLE_TIMEOUT_MS, 'storing the access token');
    } catch {
      throw gatewayError('TG_ERR_EXTENSION_FAILED', 'The access token could not be stored');
    }
    const body = { access_token: token, token_type: 'Bearer', expires_in: Math.floor((expiresAt - now) / 1000), scope: scopes.join(' ') };
    ctx.directResponse = { status: 200, headers: { ...NO_STORE }, body: JSON.stringify(body) };
  }

  return (ctx) => (ctx.method === 'POST' && ctx.path === o.path ? issue(ctx) : undefined);
}
