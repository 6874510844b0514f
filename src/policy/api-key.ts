// Where a request's API key comes from: `x-api-key`, else `Authorization: Bearer` unless the token is a JWT or an OAuth token.
import type { IncomingHttpHeaders } from 'node:http';

const BEARER = /^bearer\s+(\S+)\s*$/i;

/** The API key the client sent, or undefined. A three-part dotted Bearer token is a JWT (VerifyJWT's business). */
export function readApiKey(headers: IncomingHttpHeaders): string | undefined {
  const header = headers['x-api-key'];
  if (typeof header === 'string' && header !== '') return header;
  const auth = headers.authorization;
  if (auth === undefined) return undefined;
  const m = BEARER.exec(auth);
  if (!m) return undefined;
  const token = m[1];
  if (token.startsWith('tgat_') || isJwt(token)) return undefined;
  return token;
}

function isJwt(token: string): boolean {
  const first = token.indexOf('.');
  if (first === -1) return false;
  const second = token.indexOf('.', first + 1);
  return second !== -1 && token.indexOf('.', second + 1) === -1;
}
