// GenerateJWT: signs a JWT about the request (issuer, audience, subject and claims from variables) and sends it to
// the model server in a request header, so upstreams learn who is calling without seeing the client's credentials.
import { randomUUID } from 'node:crypto';
import { generateJwtSpec } from '../../../config/apim-kinds.js';
import type { RequestContext } from '../../../gateway/context.js';
import { policyFault } from '../../../gateway/errors.js';
import { parseDuration } from '../../../lib/duration.js';
import { familyOf, hmacKey, loadJose, prefetchJose, privateKey } from '../../jwt-keys.js';
import { compileTemplate } from '../../template.js';
import type { ApimState, Policy, PolicyFactory } from '../../types.js';

export const GENERATE_JWT = 'generate-jwt';

export const GENERATE_JWT_FAULTS = {
  signingFailed: 'steps.jwt.SigningFailed',
} as const;

/**
 * The registered claims (RFC 7519 §4.1) and how each is set: jose's setters would silently replace an
 * `additionalClaims` entry of the same name, and a template renders a string where `exp`, `nbf` and `iat` must be
 * NumericDates (a string `nbf` makes every verifier refuse the token).
 */
const REGISTERED_CLAIMS = new Map([
  ['iss', 'set it with issuer'],
  ['sub', 'set it with subject'],
  ['aud', 'set it with audience'],
  ['exp', 'set the lifetime with expiresIn'],
  ['iat', 'it is always the signing time'],
  ['nbf', 'GenerateJWT does not set it: its tokens are valid once signed'],
  ['jti', 'set id: true for a random one'],
]);

/**
 * @example generateJwt('identity', { algorithm: 'RS256', privateKey: { env: 'IDENTITY_KEY' }, issuer: 'tollgate',
 *   subject: '{developer.email}', additionalClaims: { app: '{app.name}' } }, deps) — `x-jwt-assertion` upstream.
 */
export const generateJwt: PolicyFactory = (name, spec, deps) => {
  const s = generateJwtSpec.parse(spec);
  const algorithms = [s.algorithm];
  const hmac = familyOf(s.algorithm) === 'hmac';
  if (hmac ? !s.secretKey || s.privateKey : !s.privateKey || s.secretKey) {
    throw new Error(hmac ? 'secretKey: HS algorithms sign with a secretKey, and only with it' : 'privateKey: RS, PS and ES algorithms sign with a privateKey, and only with it');
  }
  for (const claim of Object.keys(s.additionalClaims)) {
    const how = REGISTERED_CLAIMS.get(claim);
    if (how) throw new Error(`additionalClaims.${claim}: a registered JWT claim, not a template one (${how})`);
  }
  const key = hmac ? hmacKey(s.secretKey!, algorithms, 'spec.secretKey') : privateKey(s.privateKey!, algorithms, 'spec.privateKey');
  const header = { alg: s.algorithm, typ: 'JWT', ...(s.keyId && { kid: s.keyId }) };
  const lifetime = Math.max(1, Math.floor(parseDuration(s.expiresIn) / 1000));
  const subject = s.subject ? compileTemplate(s.subject) : null;
  const claims = Object.entries(s.additionalClaims).map(([claim, text]) => [claim, compileTemplate(text)] as const);
  const bearer = s.outputHeader === 'authorization' ? 'Bearer ' : '';
  const { now } = deps;
  prefetchJose();

  return {
    type: GENERATE_JWT,
    name,
    async admit(ctx: RequestContext, state: ApimState) {
      const payload: Record<string, string> = {};
      for (const [claim, template] of claims) {
        const value = template(ctx, state);
        if (value !== undefined) payload[claim] = value;
      }
      const iat = Math.floor(now() / 1000);
      const { SignJWT } = await loadJose();
      const jwt = new SignJWT(payload).setProtectedHeader(header).setIssuedAt(iat).setExpirationTime(iat + lifetime);
      if (s.issuer) jwt.setIssuer(s.issuer);
      if (s.audience) jwt.setAudience(s.audience);
      const sub = subject?.(ctx, state);
      if (sub !== undefined) jwt.setSubject(sub);
      if (s.id) jwt.setJti(randomUUID());
      let token: string;
      try {
        token = await jwt.sign(key);
      } catch (err) {
        throw policyFault(500, GENERATE_JWT_FAULTS.signingFailed, `Signing the JWT failed: ${(err as Error).message}`);
      }
      (ctx.upstreamHeaders ??= {})[s.outputHeader] = bearer + token;
    },
  } satisfies Policy;
};
