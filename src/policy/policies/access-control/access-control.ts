// AccessControl: allows or denies clients by IP address and CIDR range (IPv4 and IPv6), first matching rule wins.
// X-Forwarded-For is believed only from trusted proxies: the client is the right-most address no trusted proxy owns.
import { accessControlSpec } from '../../../config/apim-kinds.js';
import { commaList } from '../../../lib/comma-list.js';
import type { RequestContext } from '../../../gateway/context.js';
import { policyFault } from '../../../gateway/errors.js';
import type { Policy, PolicyFactory } from '../../types.js';
import { normalizeAddress } from '../../../lib/ip-address.js';
import { compileAddresses, type AddressSet } from './address-set.js';

export const ACCESS_CONTROL = 'access-control';

export const ACCESS_CONTROL_FAULTS = {
  ipDeniedAccess: 'accesscontrol.IPDeniedAccess',
  invalidIpAddress: 'accesscontrol.InvalidIPAddressInVariable',
} as const;

/** The client's address: the peer, or through trusted proxies the right-most untrusted X-Forwarded-For entry. */
function clientAddress(ctx: RequestContext, trusted: AddressSet | null): string {
  const peer = ctx.clientIp ?? '';
  if (!trusted?.has(peer)) return peer;
  const header = ctx.headers['x-forwarded-for'];
  const hops = commaList(Array.isArray(header) ? header.join(',') : header);
  // Every hop trusted: the left-most is the closest thing to a client there is.
  let client = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    client = hops[i];
    if (!trusted.has(client)) break;
  }
  return client;
}

/**
 * @example accessControl('office-only', { rules: [{ action: 'ALLOW', sourceAddresses: ['198.51.100.0/24'] }],
 *   noRuleMatchAction: 'DENY', trustedProxies: ['10.0.0.0/8'] }, deps)
 */
export const accessControl: PolicyFactory = (name, spec) => {
  const s = accessControlSpec.parse(spec);
  const rules = s.rules.map((r, i) => ({ allow: r.action === 'ALLOW', addresses: compileAddresses(r.sourceAddresses, `rules[${i}].sourceAddresses`) }));
  const trusted = s.trustedProxies.length > 0 ? compileAddresses(s.trustedProxies, 'trustedProxies') : null;
  const allowUnmatched = s.noRuleMatchAction === 'ALLOW';

  return {
    type: ACCESS_CONTROL,
    name,
    intercept(ctx) {
      const raw = clientAddress(ctx, trusted);
      const address = normalizeAddress(raw);
      if (address === undefined) throw policyFault(400, ACCESS_CONTROL_FAULTS.invalidIpAddress, `Invalid client IP address : ${raw}`);
      const rule = rules.find((r) => r.addresses.has(address));
      if (!(rule ? rule.allow : allowUnmatched)) throw policyFault(403, ACCESS_CONTROL_FAULTS.ipDeniedAccess, `Access Denied for client ip : ${address}`);
    },
  } satisfies Policy;
};
