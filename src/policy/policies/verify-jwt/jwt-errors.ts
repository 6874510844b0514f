// jose's verification errors mapped onto Apigee's VerifyJWT fault codes, by their documented `code` (no instanceof:
// jose is loaded only when a JWT policy is configured).
import type { errors } from 'jose';
import { policyFault, type GatewayError } from '../../../gateway/errors.js';
import { JwksUnavailableError } from '../../jwks-cache.js';

export const VERIFY_JWT_FAULTS = {
  failedToResolveVariable: 'steps.jwt.FailedToResolveVariable',
  failedToDecode: 'steps.jwt.FailedToDecode',
  invalidToken: 'steps.jwt.InvalidToken',
  tokenExpired: 'steps.jwt.TokenExpired',
  tokenNotYetValid: 'steps.jwt.TokenNotYetValid',
  issuerMismatch: 'steps.jwt.JwtIssuerMismatch',
  audienceMismatch: 'steps.jwt.JwtAudienceMismatch',
  subjectMismatch: 'steps.jwt.JwtSubjectMismatch',
  invalidClaim: 'steps.jwt.InvalidClaim',
  algorithmNotAllowed: 'steps.jwt.AlgorithmInTokenNotPresentInConfiguration',
  noMatchingPublicKey: 'steps.jwt.NoMatchingPublicKey',
  /** No JWKS was ever fetched (the last try failed): the server's trouble, not the client's. The only 500. */
  unknownException: 'steps.jwt.UnknownException',
} as const;

const F = VERIFY_JWT_FAULTS;

const CLAIM_FAULTS: Record<string, string> = { nbf: F.tokenNotYetValid, iss: F.issuerMismatch, aud: F.audienceMismatch, sub: F.subjectMismatch };

const DECODE_FAILURES = new Set(['ERR_JWS_INVALID', 'ERR_JWT_INVALID', 'ERR_JOSE_NOT_SUPPORTED']);

/** The fault for jose's `err`; `unexplained` is told of each error no fault code explains (the caller decides what to log). */
export function jwtFault(err: unknown, unexplained: (err: unknown) => void): GatewayError {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ERR_JWT_EXPIRED') return policyFault(401, F.tokenExpired, 'The token has expired');
  if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') {
    const { claim, reason } = err as errors.JWTClaimValidationFailed;
    return policyFault(401, CLAIM_FAULTS[claim] ?? F.invalidClaim, `Invalid claim "${claim}": ${reason}`);
  }
  if (code === 'ERR_JOSE_ALG_NOT_ALLOWED') return policyFault(401, F.algorithmNotAllowed, 'The token\'s algorithm is not accepted');
  if (code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') return policyFault(401, F.invalidToken, 'Invalid token: the signature does not verify');
  if (code === 'ERR_JWKS_NO_MATCHING_KEY') return policyFault(401, F.noMatchingPublicKey, 'No public key in the JWKS matches the token');
  if (typeof code === 'string' && DECODE_FAILURES.has(code)) return policyFault(401, F.failedToDecode, 'The token could not be decoded');
  if (err instanceof JwksUnavailableError) return policyFault(500, F.unknownException, 'The token could not be verified: the signing keys are unavailable');
  // Anything else jose refuses (a key in the JWKS it will not use, say) leaves this token unverified; the server works.
  unexplained(err);
  return policyFault(401, F.invalidToken, 'Invalid token: it does not verify with the keys configured');
}
