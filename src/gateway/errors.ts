// Every error tollgate answers with: named codes, one HTTP-facing error type, and the two documented body shapes.
// The README's error table lists every code below (a test keeps the two in step).

export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'server_error';

export type FaultFormat = 'openai' | 'apigee';

interface ErrorDef {
  status: number;
  type: ErrorType;
  code: string;
  message: string;
}

/** tollgate's own error codes (policy faults use the Apigee fault codes their policies define). */
export const TG_ERRORS = {
  TG_ERR_INVALID_JSON: { status: 400, type: 'invalid_request_error', code: 'invalid_json', message: 'The request body is not valid JSON' },
  TG_ERR_INVALID_REQUEST: { status: 400, type: 'invalid_request_error', code: 'invalid_request', message: 'The request is invalid' },
  TG_ERR_MISSING_MODEL: { status: 400, type: 'invalid_request_error', code: 'missing_model', message: 'The request body has no "model" field' },
  TG_ERR_BODY_TOO_LARGE: { status: 413, type: 'invalid_request_error', code: 'body_too_large', message: 'The request body is larger than the limit' },
  TG_ERR_UNSUPPORTED_CONTENT_ENCODING: { status: 415, type: 'invalid_request_error', code: 'unsupported_content_encoding', message: 'The request body must not be compressed' },
  TG_ERR_REQUEST_TIMEOUT: { status: 408, type: 'invalid_request_error', code: 'request_timeout', message: 'The client did not send the request in time' },
  TG_ERR_MODEL_NOT_FOUND: { status: 404, type: 'invalid_request_error', code: 'model_not_found', message: 'The model does not exist' },
  TG_ERR_ROUTE_NOT_FOUND: { status: 404, type: 'invalid_request_error', code: 'route_not_found', message: 'No route matches this request' },
  TG_ERR_RESPONSE_NOT_FOUND: { status: 404, type: 'invalid_request_error', code: 'response_not_found', message: 'No stored response has this id' },
  TG_ERR_RESPONSE_LOOKUP_FAILED: { status: 503, type: 'server_error', code: 'response_lookup_failed', message: 'Where the stored response lives could not be looked up; try again' },
  TG_ERR_METHOD_NOT_ALLOWED: { status: 405, type: 'invalid_request_error', code: 'method_not_allowed', message: 'Method not allowed' },
  TG_ERR_REQUEST_SHED: { status: 429, type: 'rate_limit_error', code: 'request_shed', message: 'The model servers are saturated; sheddable requests are refused' },
  TG_ERR_QUEUE_FULL: { status: 503, type: 'server_error', code: 'queue_full', message: 'The flow-control queue is full' },
  TG_ERR_QUEUE_TIMEOUT: { status: 503, type: 'server_error', code: 'queue_timeout', message: 'The request waited too long for a model server' },
  TG_ERR_NO_ENDPOINTS: { status: 503, type: 'server_error', code: 'no_healthy_endpoints', message: 'No healthy model-server endpoint is available' },
  TG_ERR_UPSTREAM_UNAVAILABLE: { status: 503, type: 'server_error', code: 'upstream_unavailable', message: 'The model servers could not be reached' },
  TG_ERR_UPSTREAM_ERROR: { status: 502, type: 'server_error', code: 'upstream_error', message: 'The model server failed' },
  TG_ERR_UPSTREAM_TIMEOUT: { status: 504, type: 'server_error', code: 'upstream_timeout', message: 'The model server did not answer in time' },
  TG_ERR_EXTENSION_FAILED: { status: 500, type: 'server_error', code: 'extension_failed', message: 'A policy extension could not answer' },
  TG_ERR_INTERNAL: { status: 500, type: 'server_error', code: 'internal_error', message: 'Internal error' },
  TG_ERR_SHUTTING_DOWN: { status: 503, type: 'server_error', code: 'shutting_down', message: 'The gateway is shutting down' },
  /** Never sent (nobody is left to read it): the request is recorded as the client's hang-up, with no status. */
  TG_ERR_CLIENT_CLOSED: { status: 499, type: 'invalid_request_error', code: 'client_closed', message: 'The client closed the connection' },
} as const satisfies Record<string, ErrorDef>;

export type TgErrorName = keyof typeof TG_ERRORS;

export interface ErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** The one error type that reaches clients. `code` is a tollgate code or an Apigee fault code. */
export class GatewayError extends Error {
  readonly status: number;
  readonly type: ErrorType;
  readonly code: string;
  readonly headers: Record<string, string>;
  /** The request field at fault (`messages[0].content`), as OpenAI's `error.param`, which the SDKs expose. */
  readonly param: string | undefined;

  constructor(status: number, type: ErrorType, code: string, message: string, headers: Record<string, string> = {}, param?: string) {
    super(message);
    this.status = status;
    this.type = type;
    this.code = code;
    this.headers = headers;
    this.param = param;
  }

  toResponse(format: FaultFormat = 'openai'): ErrorResponse {
    const error = { message: this.message, type: this.type, code: this.code, ...(this.param !== undefined && { param: this.param }) };
    // Apigee's shape, with OpenAI's beside it: Apigee clients read `fault` and ignore the rest, and the OpenAI SDKs,
    // which read only `error`, would otherwise raise "404 status code (no body)" without a code or message.
    const body = format === 'apigee' ? { fault: { faultstring: this.message, detail: { errorcode: this.code } }, error } : { error };
    return { status: this.status, headers: { 'content-type': 'application/json', ...this.headers }, body: JSON.stringify(body) };
  }
}

/** gatewayError('TG_ERR_MODEL_NOT_FOUND', 'model "x" does not exist') */
export function gatewayError(name: TgErrorName, message?: string, headers?: Record<string, string>, param?: string): GatewayError {
  const def: ErrorDef = TG_ERRORS[name];
  return new GatewayError(def.status, def.type, def.code, message ?? def.message, headers, param);
}

/** A policy fault: Apigee fault code, OpenAI error type. */
export function policyFault(
  status: number,
  code: string,
  message: string,
  headers?: Record<string, string>,
): GatewayError {
  const type: ErrorType =
    status === 429 ? 'rate_limit_error' : status === 401 ? 'authentication_error' : status === 403 ? 'permission_error' : status >= 500 ? 'server_error' : 'invalid_request_error';
  return new GatewayError(status, type, code, message, headers);
}
