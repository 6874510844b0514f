// Who made an admin change, for the audit log: `admin` behind the token, `loopback` without one, refined by x-tollgate-actor.
import type { AdminRequest } from '../gateway/admin-router.js';
import { invalid } from './admin-input.js';

const REFINEMENT = /^[\w.@+-]{1,100}$/;

/**
 * `admin` for a caller that presented the admin token, `loopback` on a gateway without one (whatever Authorization
 * header it sends). The refinement is appended (`admin:alice@example.com`) rather than replacing the base, so a
 * loopback caller cannot record itself as `admin`.
 */
export function actorOf(req: AdminRequest): string {
  const base = req.authenticated ? 'admin' : 'loopback';
  const refinement = req.headers['x-tollgate-actor'];
  if (refinement === undefined) return base;
  if (typeof refinement !== 'string' || !REFINEMENT.test(refinement)) {
    throw invalid('Invalid actor header', [{ path: 'headers.x-tollgate-actor', message: 'must be 1-100 characters of letters, digits and . @ + - _' }]);
  }
  return `${base}:${refinement}`;
}
