// jose's verification errors mapped onto Apigee's VerifyJWT fault codes.
import { errors } from 'jose';
import { policyFault, type GatewayError } from '../../../gateway/errors.js';

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
  /** The JWKS could not be fetched: the server's trouble, not the client's. */
  unknownException: 'steps.jwt.UnknownException',
} as const;

const F = VERIFY_JWT_FAULTS;

const CLAIM_FAULTS: Record<string, string> = { nbf: F.tokenNotYetValid, iss: F.issuerMismatch, aud: F.audienceMismatch, sub: F.subjectMismatch };

export function jwtFault(err: unknown): GatewayError {
  if (err instanceof errors.JWTExpired) return policyFault(401, F.tokenExpired, 'The token has expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    return policyFault(401, CLAIM_FAULTS[err.claim] ?? F.invalidClaim, `Invalid claim "${err.claim}": ${err.reason}`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return policyFault(401, F.algorithmNotAllowed, 'The token\'s algorithm is not accepted');
  if (err instanceof errors.JWSSignatureVerificationFailed) return policyFault(401, F.invalidToken, 'Invalid token: the signature does not verify');
  if (err instanceof errors.JWKSNoMatchingKey) return policyFault(401, F.noMatchingPublicKey, 'No public key in the JWKS matches the token');
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid || err instanceof errors.JOSENotSupported) {
    return policyFault(401, F.failedToDecode, 'The token could not be decoded');
  }
  return policyFault(500, F.unknownException, 'The token could not be verified: the signing keys are unavailable');
}
