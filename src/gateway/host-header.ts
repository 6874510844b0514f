// The host a request names (RFC 9112 §3.2): refused when ambiguous, taken from an absolute-form target when it has one.
import type { IncomingMessage } from 'node:http';

/**
 * `host [":" port]` (RFC 3986 §3.2.2): a registered name (unreserved, sub-delims, percent-encoded), an IPv4 address,
 * or an IP literal in brackets; the port digits, possibly none. Empty is allowed: a client whose target has no
 * authority sends an empty Host.
 */
const VALID_HOST = /^(?:\[[0-9A-Za-z:.%_~-]+\]|[0-9A-Za-z\-._~!$&'()*+,;=%]*)(?::[0-9]*)?$/;

/** The authority of an absolute-form target (`http://host:port/path`). */
const ABSOLUTE_AUTHORITY = /^https?:\/\/([^/?#]*)/i;

/**
 * Why the request's host cannot be known, or undefined: an HTTP/1.1 request without Host (refused here rather than by
 * Node, whose 400 has no body), more than one Host line (node:http keeps the first) or one that is no host: front
 * proxies and tollgate could each read a different host, and HTTPRoute hostnames match on it.
 */
export function hostLineProblem(req: IncomingMessage): string | undefined {
  if (req.headers.host === undefined && req.httpVersionMajor === 1 && req.httpVersionMinor === 1) return 'An HTTP/1.1 request must carry a Host header';
  const raw = req.rawHeaders;
  let lines = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') lines++;
  }
  if (lines > 1) return 'A request must carry one Host header, not several';
  const host = req.headers.host;
  if (host !== undefined && !VALID_HOST.test(host)) return `The Host header ${JSON.stringify(host.slice(0, 256))} is not a host`;
  return undefined;
}

/**
 * Makes an absolute-form target's authority the request's Host, as the server of such a request must (RFC 9112
 * §3.2.2: the Host line is ignored, once checked): a route matched on the Host line would take a request its target
 * sent elsewhere. Returns why the target's authority is no host, or undefined.
 */
export function adoptTargetHost(req: IncomingMessage): string | undefined {
  const url = req.url;
  if (url === undefined || url.charCodeAt(0) === 0x2f) return undefined;
  const authority = ABSOLUTE_AUTHORITY.exec(url)?.[1];
  if (authority === undefined) return undefined;
  // userinfo (`user@host`) is no part of the host, and deprecated in http URIs (RFC 9110 §4.2.4).
  const host = authority.slice(authority.lastIndexOf('@') + 1);
  if (!VALID_HOST.test(host)) return `The request target's host ${JSON.stringify(host.slice(0, 256))} is not a host`;
  req.headers.host = host;
  return undefined;
}
