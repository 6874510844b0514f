// Sets of IPv4/IPv6 addresses and CIDR ranges (node:net BlockList).
import { BlockList, isIP } from 'node:net';
import { normalizeAddress } from '../../../lib/ip-address.js';

export interface AddressSet {
  has(address: string): boolean;
}

/**
 * compileAddresses(['10.0.0.0/8', '2001:db8::/32', '203.0.113.7'], 'trustedProxies')
 * @throws Error naming the field and the entry that is neither an address nor a CIDR range.
 */
export function compileAddresses(entries: readonly string[], field: string): AddressSet {
  const list = new BlockList();
  entries.forEach((entry, i) => {
    const [address, prefix, extra] = entry.split('/');
    const normal = normalizeAddress(address);
    const family = normal === undefined ? 0 : isIP(normal);
    const bits = prefix === undefined ? undefined : Number(prefix);
    const max = family === 4 ? 32 : 128;
    if (!normal || extra !== undefined || (bits !== undefined && (!/^\d+$/.test(prefix!) || bits > max))) {
      throw new Error(`${field}[${i}]: "${entry}" is not an IP address or CIDR range`);
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(normal, type);
    else list.addSubnet(normal, bits, type);
  });
  return {
    has(address) {
      const a = normalizeAddress(address);
      return a !== undefined && list.check(a, isIP(a) === 4 ? 'ipv4' : 'ipv6');
    },
  };
}
