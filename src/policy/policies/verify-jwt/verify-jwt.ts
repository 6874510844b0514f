// VerifyJWT: a signed JWT (HS with a shared secret; RS, PS, ES with a PEM key or a cached JWKS) checked for
// algorithm, signature, exp/nbf with clock skew, issuer, audience, subject and required claims; its claims become
// flow variables `jwt.<policy>.claim.<name>` for identifiers, templates and later policies.
import type { JWTPayload, JWTVerifyGetKey, JWTVerifyOptions, errors } from 'jose';
import type { KeyObject } from 'node:crypto';
import { verifyJwtSpec } from '../../../config/apim-kinds.js';
import type { RequestContext } from '../../../gateway/context.js';
import { policyFault } from '../../../gateway/errors.js';
import { parseDuration } from '../../../lib/duration.js';
import { silentLogger } from '../../../lib/logger.js';
import { cachedJwks } from '../../jwks-cache.js';
import { familyOf, hmacKey, loadJose, prefetchJose, publicKey } from '../../jwt-keys.js';
import { sharedResource } from '../../shared-resources.js';
import type { ApimState, Policy, PolicyDeps, PolicyFactory } from '../../types.js';
import { compileCredential, setVariable, type Variable } from '../../variables.js';
import { VERIFY_JWT_FAULTS, jwtFault } from './jwt-errors.js';

export { VERIFY_JWT_FAULTS } from './jwt-errors.js';

export const VERIFY_JWT = 'verify-jwt';

const BEARER = /^bearer\s+(\S+)\s*$/i;

const bearer: Variable = (ctx) => {
  const m = ctx.headers.authorization === undefined ? null : BEARER.exec(ctx.headers.authorization);
  return m?.[1];
};

/** Distinct unexplained refusals a policy logs: enough to show an operator the cause, too few to flood the log. */
const MAX_REASONS_LOGGED = 8;

const fixed = (key: KeyObject): JWTVerifyGetKey => () => key;

const codeOf = (err: unknown): unknown => (err as { code?: unknown } | null)?.code;

/**
 * jwtVerify, trying each key when several in the JWKS fit the token (no `kid`, keys without one, a repeated kid:
 * an IdP mid-rotation), as jose documents for JWKSMultipleMatchingKeys: the first that verifies decides. A key jose
 * will not use (an error without a code) is passed over too, and is the error when no other key verifies.
 */
async function verifyToken(token: string, key: JWTVerifyGetKey, options: JWTVerifyOptions): Promise<JWTPayload> {
  const jose = await loadJose();
  try {
    return (await jose.jwtVerify(token, key, options)).payload;
  } catch (err) {
    if (codeOf(err) !== 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') throw err;
    let unusable: unknown;
    for await (const candidate of err as errors.JWKSMultipleMatchingKeys) {
      try {
        return (await jose.jwtVerify(token, candidate, options)).payload;
      } catch (inner) {
        const code = codeOf(inner);
        if (code === undefined) unusable ??= inner;
        else if (code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') throw inner;
      }
    }
    throw unusable ?? new jose.errors.JWSSignatureVerificationFailed();
  }
}

function claimText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Always a resolver, so one jwtVerify overload serves static keys and JWKS alike. */
function keyOf(s: ReturnType<typeof verifyJwtSpec.parse>, deps: PolicyDeps): JWTVerifyGetKey {
  const families = new Set(s.algorithms.map(familyOf));
  if (families.has('hmac') && families.size > 1) throw new Error('algorithms: HMAC and public-key algorithms cannot be mixed');
  if (families.has('hmac')) {
    if (!s.secretKey || s.publicKey || s.jwks) throw new Error('secretKey: HS algorithms verify with a secretKey, and only with it');
    return fixed(hmacKey(s.secretKey, s.algorithms, 'spec.secretKey'));
  }
  if (s.secretKey) throw new Error('secretKey: public-key algorithms verify with publicKey or jwks');
  if (Boolean(s.publicKey) === Boolean(s.jwks)) throw new Error('publicKey: give exactly one of publicKey and jwks');
  if (s.publicKey) return fixed(publicKey(s.publicKey, s.algorithms, 'spec.publicKey'));
  const j = s.jwks!;
  const settings = { uri: j.uri, cacheMaxAge: parseDuration(j.cacheMaxAge), cooldown: parseDuration(j.cooldown), timeout: parseDuration(j.timeout) };
  // Kept across engine rebuilds, so a configuration or store change does not refetch the keys.
  return sharedResource(deps.now, 'jwks', settings, () => cachedJwks(settings, deps.now, deps.logger));
}

/**
 * @example verifyJwt('verify-idp', { algorithms: ['RS256'], jwks: { uri: 'https://idp/.well-known/jwks.json' },
 *   issuer: 'https://idp', audience: 'tollgate', timeAllowance: '30s' }, deps)
 */
export const verifyJwt: PolicyFactory = (name, spec, deps) => {
  const s = verifyJwtSpec.parse(spec);
  const key = keyOf(s, deps);
  prefetchJose();
  // As Authorization never goes upstream, neither does the header or query parameter a source names.
  const source = s.source ? compileCredential(s.source.ref) : null;
  const read = source ? source.read : bearer;
  const required = Object.entries(s.additionalClaims);
  const prefix = `jwt.${name}.claim.`;
  const options = {
    algorithms: s.algorithms,
    issuer: s.issuer,
    audience: s.audience,
    subject: s.subject,
    clockTolerance: parseDuration(s.timeAllowance) / 1000,
    requiredClaims: s.requireExpiry ? ['exp'] : [],
  };
  const { now } = deps;
  const logger = deps.logger ?? silentLogger;
  const reported = new Set<string>();
  // Once per reason: such a cause lies in the keys, so every request would repeat it.
  const unexplained = (err: unknown) => {
    const reason = err instanceof Error ? err.message : String(err);
    if (reported.size >= MAX_REASONS_LOGGED || reported.has(reason)) return;
    reported.add(reason);
    logger.warn({ policy: name, reason }, 'a JWT was refused for a reason no fault code names: look at the keys configured or the JWKS');
  };

  function accept(payload: JWTPayload, state: ApimState): void {
    for (const [claim, value] of required) {
      if (payload[claim] === undefined || claimText(payload[claim]) !== value) {
        throw policyFault(401, VERIFY_JWT_FAULTS.invalidClaim, `Invalid claim "${claim}": does not have the required value`);
      }
    }
    for (const claim in payload) setVariable(state, prefix + claim, claimText(payload[claim]));
  }

  return {
    type: VERIFY_JWT,
    name,
    async authenticate(ctx: RequestContext, state: ApimState) {
      const token = read(ctx, state);
      source?.withhold(ctx);
      if (!token) throw policyFault(401, VERIFY_JWT_FAULTS.failedToResolveVariable, 'No JWT in the request: send it as Authorization: Bearer');
      let payload: JWTPayload;
      try {
        payload = await verifyToken(token, key, { ...options, currentDate: new Date(now()) });
      } catch (err) {
        throw jwtFault(err, unexplained);
      }
      accept(payload, state);
    },
  } satisfies Policy;
};
