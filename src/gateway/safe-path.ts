// Paths tollgate refuses rather than resolve. Routes and operation sets are matched on the path as the client sent
// it, and the path goes upstream as it is: a server behind that resolves `..` or decodes `%2F` would serve
// `/v1/public/../admin` as `/v1/admin`, a path no route or operation set granted.
import { gatewayError } from './errors.js';

/** Most paths hold none of these characters and are settled by this one test. */
const SUSPECT = /[.%\\]/;
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i;
const HIDDEN_SEPARATOR = /%2f|%5c|\\/i;

/** Whether the path has a `.` or `..` segment, plain or percent-encoded, that a URL parser would resolve away. */
export function hasDotSegment(path: string): boolean {
  return SUSPECT.test(path) && DOT_SEGMENT.test(path);
}

/** Throws 400 invalid_request for a path with a `.` or `..` segment (plain or percent-encoded) or an encoded `/` or `\`. */
export function assertSafePath(path: string): void {
  if (!SUSPECT.test(path)) return;
  if (DOT_SEGMENT.test(path) || HIDDEN_SEPARATOR.test(path)) {
    throw gatewayError('TG_ERR_INVALID_REQUEST', 'The path has a dot segment or an encoded separator, which tollgate refuses rather than resolve');
  }
}
