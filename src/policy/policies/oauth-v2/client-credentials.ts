// The token request of RFC 6749's client-credentials grant: the form body and the client's id and secret, which
// come as HTTP Basic (§2.3.1, form-encoded inside) or as form fields, never both.
import type { IncomingHttpHeaders } from 'node:http';

export interface TokenRequest {
  grantType: string | undefined;
  /** Requested scopes (space-separated `scope`); empty when none was asked for. */
  scopes: string[];
  clientId: string | undefined;
  clientSecret: string | undefined;
  /** The client used HTTP Basic, so a refusal carries `www-authenticate` (RFC 6749 §5.2). */
  basic: boolean;
}

export class MalformedTokenRequest extends Error {}

/**
 * HTTP Basic credentials that cannot be read: a failed client authentication through the Authorization header, which
 * RFC 6749 §5.2 answers 401 invalid_client with a Basic challenge, not a malformed request.
 */
export class UnreadableBasicCredentials extends Error {}

/** The scheme alone: whatever follows it, the client meant to authenticate with HTTP Basic. */
const BASIC = /^basic(\s|$)/i;
const BASE64 = /^[A-Za-z0-9+/=]+$/;
const FORM = 'application/x-www-form-urlencoded';
/** The parameters read here: RFC 6749 §3.2 allows each once (which of two wins differs from one reader to another). */
const PARAMETERS = ['grant_type', 'client_id', 'client_secret', 'scope'];

function formDecode(text: string): string {
  return decodeURIComponent(text.replace(/\+/g, ' '));
}

/** client_id:client_secret from the value after `Basic`, each form-encoded (RFC 6749 §2.3.1). */
function basicCredentials(value: string): { clientId: string; clientSecret: string } {
  if (!BASE64.test(value)) throw new UnreadableBasicCredentials('HTTP Basic credentials must be base64');
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) throw new UnreadableBasicCredentials('HTTP Basic credentials must be client_id:client_secret');
  try {
    return { clientId: formDecode(decoded.slice(0, colon)), clientSecret: formDecode(decoded.slice(colon + 1)) };
  } catch {
    throw new UnreadableBasicCredentials('HTTP Basic credentials are not form-encoded');
  }
}

/**
 * @throws MalformedTokenRequest for a body that is not a form, a parameter repeated, or credentials given twice;
 * UnreadableBasicCredentials for an HTTP Basic value that is not base64 of client_id:client_secret.
 */
export function readTokenRequest(headers: IncomingHttpHeaders, body: Buffer): TokenRequest {
  const type = headers['content-type']?.split(';')[0].trim().toLowerCase();
  if (body.length > 0 && type !== FORM) throw new MalformedTokenRequest(`the body must be ${FORM}`);
  const form = new URLSearchParams(body.toString('utf8'));
  const repeated = PARAMETERS.find((name) => form.getAll(name).length > 1);
  if (repeated) throw new MalformedTokenRequest(`${repeated} must not be given more than once`);
  let clientId = form.get('client_id') ?? undefined;
  let clientSecret = form.get('client_secret') ?? undefined;
  const auth = headers.authorization;
  const basic = auth !== undefined && BASIC.test(auth);
  if (basic) {
    if (clientId !== undefined || clientSecret !== undefined) throw new MalformedTokenRequest('send the client credentials once: HTTP Basic or form fields');
    ({ clientId, clientSecret } = basicCredentials(auth.slice('basic'.length).trim()));
  }
  const scope = form.get('scope') ?? '';
  return {
    grantType: form.get('grant_type') ?? undefined,
    scopes: scope.split(' ').filter((s) => s !== ''),
    clientId: clientId || undefined,
    clientSecret: clientSecret || undefined,
    basic,
  };
}
