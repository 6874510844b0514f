// The token endpoint's refusals in RFC 6749 §5.2's shape, `{"error": "invalid_client", "error_description": "…"}`:
// OAuth client libraries read `error` as one of the registered codes, so the gateway's `{error: {message, type,
// code}}` reached them as "[object Object]". The fault code stays the policy's (usage records, Apigee's `fault`).
import { GatewayError, type ErrorResponse, type FaultFormat } from '../../../gateway/errors.js';
import { OAUTH_V2_FAULTS as F } from './oauth-v2-faults.js';

/** The policy's fault code → RFC 6749 §5.2's error code. */
const RFC_6749_ERROR = {
  [F.invalidRequest]: 'invalid_request',
  [F.invalidClient]: 'invalid_client',
  [F.unsupportedGrantType]: 'unsupported_grant_type',
  [F.invalidScope]: 'invalid_scope',
} as const;

export type TokenFaultCode = keyof typeof RFC_6749_ERROR;

/** A refusal of the token endpoint: 400, or 401 for client authentication (RFC 6749 §5.2). */
export class TokenEndpointError extends GatewayError {
  constructor(status: 400 | 401, code: TokenFaultCode, description: string, headers?: Record<string, string>) {
    super(status, status === 401 ? 'authentication_error' : 'invalid_request_error', code, description, headers);
  }

  override toResponse(format: FaultFormat = 'openai'): ErrorResponse {
    const body = {
      error: RFC_6749_ERROR[this.code as TokenFaultCode],
      error_description: this.message,
      // Beside it, as for every fault in the apigee format: Apigee clients read `fault`, OAuth libraries `error`.
      ...(format === 'apigee' && { fault: { faultstring: this.message, detail: { errorcode: this.code } } }),
    };
    // RFC 6749 §5.1 asks this of the token answer; a refusal is no more a cache's to keep.
    const headers = { 'content-type': 'application/json', 'cache-control': 'no-store', pragma: 'no-cache', ...this.headers };
    return { status: this.status, headers, body: JSON.stringify(body) };
  }
}
