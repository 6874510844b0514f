// Paths tollgate refuses rather than resolve. Routes and operation sets are matched on the path as the client sent
// it, and the path goes upstream as it is: a server behind that resolves `..` or decodes `%2F` would serve
// `/v1/public/../admin` as `/v1/admin`, a path no route or operation set granted.
import { gatewayError } from './errors.js';

/** Most paths hold none of these characters and are settled by this one test. */
const SUSPECT = /[.%\\#]/;
// A URL parser ends the path at a fragment: `/v1/public/..#x` is `/v1/public/..`, the parent. Servlet containers
// (Tomcat, Jetty) drop a segment's `;parameters` before resolving it: `/public/..;x/admin` is `/admin` there.
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:;[^/]*)?(?:[/#]|$)/i;
const HIDDEN_SEPARATOR = /%2f|%5c|\\/i;

/** Whether the path has a `.` or `..` segment, plain or percent-encoded, that a URL parser would resolve away. */
export function hasDotSegment(path: string): boolean {
  return SUSPECT.test(path) && DOT_SEGMENT.test(path);
}

/**
 * Throws 400 invalid_request for a path with a `.` or `..` segment (plain or percent-encoded), an encoded `/` or `\`,
 * or a fragment.
 */
export function assertSafePath(path: string): void {
  if (!SUSPECT.test(path)) return;
  if (DOT_SEGMENT.test(path) || HIDDEN_SEPARATOR.test(path)) {
    throw gatewayError('TG_ERR_INVALID_REQUEST', 'The path has a dot segment or an encoded separator, which tollgate refuses rather than resolve');
  }
  // A request target has no fragment (RFC 9112 §3.2); one sent anyway goes upstream as it is, where a server that
  // drops it resolves what came before it, unseen by the routes.
  if (path.includes('#')) throw gatewayError('TG_ERR_INVALID_REQUEST', 'The path has a fragment (#), which a request target never holds');
}
