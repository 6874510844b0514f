// What keeps a web browser from driving the admin API on a user's behalf: a page of another site (CSRF) or one whose
// name was rebound to 127.0.0.1 (DNS rebinding) can make the user's browser send admin requests; without a token,
// nothing else stops them.
import type { IncomingHttpHeaders } from 'node:http';
import { clipName } from '../lib/clip-name.js';

export const CROSS_SITE_REQUEST = 'cross_site_request';
export const HOST_NOT_LOOPBACK = 'host_not_loopback';
export const UNSUPPORTED_MEDIA_TYPE = 'unsupported_media_type';

/** Browsers send these for a request the user made themselves (typed URL) or that the admin API's own pages made. */
const OWN_SITE = new Set(['none', 'same-origin']);

/** The names a DNS-rebound page cannot have: a rebinding attack needs a name of the attacker's. */
const LOOPBACK_HOST = /^(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d{1,5})?$/i;

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json$/;
const YAML_TYPES = new Set(['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml']);

/** Whether `origin` (the Origin header) is this server's own, as the Host header names it. */
function isOwnOrigin(origin: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  try {
    const { protocol, host: originHost } = new URL(origin);
    return (protocol === 'http:' || protocol === 'https:') && originHost === new URL(`${protocol}//${host}`).host;
  } catch {
    return false; // `null` (a sandboxed frame, a file: page) and anything else that is not a URL
  }
}

/** Why the request is refused as one a browser sent for another site, or undefined. */
export function crossSiteProblem(headers: IncomingHttpHeaders): string | undefined {
  const site = headers['sec-fetch-site'];
  if (site !== undefined && !OWN_SITE.has(site.toLowerCase())) {
    return `The admin API does not answer requests a browser makes for a web page (Sec-Fetch-Site: ${JSON.stringify(clipName(site))}); call it from a command line or a program`;
  }
  const { origin } = headers;
  if (origin !== undefined && !isOwnOrigin(origin, headers.host)) {
    return `The admin API does not answer requests a browser makes for another site (Origin: ${JSON.stringify(clipName(origin))}); call it from a command line or a program`;
  }
  return undefined;
}

/** Why a token-less admin API refuses this Host (a name other than a loopback one: DNS rebinding), or undefined. */
export function hostProblem(headers: IncomingHttpHeaders): string | undefined {
  // HTTP/1.1 requires a Host, which Node checks; only an HTTP/1.0 client sends none, and browsers always send one.
  const { host } = headers;
  if (host === undefined || LOOPBACK_HOST.test(host)) return undefined;
  return `Without TOLLGATE_ADMIN_TOKEN the admin API answers only to a loopback name (localhost, 127.0.0.1, [::1]), not Host ${JSON.stringify(clipName(host))}`;
}

/**
 * Why a request's body is refused for its content-type, or undefined. Form and text/plain bodies are what a page may
 * send to another site without asking it first (a CORS preflight, which the admin API never grants); JSON and YAML
 * are not.
 */
export function bodyTypeProblem(headers: IncomingHttpHeaders, accept: 'json' | 'json-or-yaml'): string | undefined {
  const length = headers['content-length'];
  if (headers['transfer-encoding'] === undefined && (length === undefined || length === '0')) return undefined;
  const type = headers['content-type']?.split(';')[0].trim().toLowerCase() ?? '';
  if (JSON_TYPE.test(type) || (accept === 'json-or-yaml' && YAML_TYPES.has(type))) return undefined;
  const wanted = accept === 'json' ? 'application/json' : 'application/json or application/yaml';
  return `The request body must be sent as ${wanted}, not ${type ? JSON.stringify(clipName(type)) : 'without a content-type'}`;
}
