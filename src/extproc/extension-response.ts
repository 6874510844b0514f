// An extension's immediate response, passed to the client as the extension wrote it, less the headers HTTP cannot carry.
import type { IncomingHttpHeaders } from 'node:http';
import { GatewayError, type ErrorResponse, type ErrorType } from '../gateway/errors.js';
import { dropUnsendableHeaders } from '../gateway/header-values.js';
import { clipName } from '../lib/clip-name.js';

function typeFor(status: number): ErrorType {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  return status >= 500 ? 'server_error' : 'invalid_request_error';
}

/** Thrown from a hook; the data plane answers with `toResponse()`, which ignores the fault format. */
export class ExtensionResponse extends GatewayError {
  readonly #headers: Record<string, string>;
  readonly #body: string;

  /**
   * `details` is the extension's free text (Envoy's "for log and debug output"): it goes into the message, never the
   * code, which becomes a metric label and must stay one of a fixed set.
   */
  constructor(status: number, headers: IncomingHttpHeaders, body: Buffer, details: string | undefined) {
    super(status, typeFor(status), 'extension_response', details ? `answered by an extension: ${clipName(details)}` : 'answered by an extension');
    const h: Record<string, string> = {};
    for (const name in headers) {
      const v = headers[name];
      if (v !== undefined) h[name] = Array.isArray(v) ? v.join(', ') : v;
    }
    // node:http throws on a name or value it cannot send (a CR/LF the extension copied from the request): left out.
    dropUnsendableHeaders(h);
    this.#headers = h;
    this.#body = body.toString('utf8');
  }

  override toResponse(): ErrorResponse {
    return { status: this.status, headers: { ...this.#headers }, body: this.#body };
  }
}
