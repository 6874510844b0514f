// tollgate asks model servers for `accept-encoding: identity`, since it reads answers (usage, response policies, SSE
// rewrites). One that compresses anyway (or a proxy in front of it) sends bytes tollgate cannot read as text.
import type { IncomingHttpHeaders } from 'node:http';
import { gatewayError, type GatewayError } from './errors.js';

/** Whether the answer's bytes are its text: no content-encoding, or identity. */
export function readableAnswer(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): boolean {
  const encoding = headers['content-encoding'];
  return encoding === undefined || encoding === '' || (typeof encoding === 'string' && encoding.trim().toLowerCase() === 'identity');
}

/**
 * The 502 for a compressed answer that a policy or usage stripping must change: rewriting its bytes as text would
 * corrupt it, and passing it unchanged would skip the policy. (One nobody changes passes through; only a JSON answer's usage is read, from a decoded copy.)
 */
export function compressedAnswerError(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): GatewayError {
  return gatewayError('TG_ERR_UPSTREAM_ERROR', `The model server compressed its answer (content-encoding: ${String(headers['content-encoding'])}) although tollgate asked for identity; its response policies cannot read it`);
}
