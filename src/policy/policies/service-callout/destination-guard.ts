// SSRF protection for callouts: which addresses a request built from variables may reach. Names are resolved
// inside the connection's own DNS lookup and the socket connects to the address that was checked, so a name that
// resolves differently a moment later (DNS rebinding) cannot slip a loopback or metadata address through.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { Agent } from 'undici';

/** Never reachable unless a host is listed in allowedHosts: this machine, link-local, cloud metadata, non-unicast. */
const ALWAYS: [string, number, 'ipv4' | 'ipv6', string][] = [
  ['127.0.0.0', 8, 'ipv4', 'loopback'],
  ['0.0.0.0', 8, 'ipv4', 'unspecified'],
  ['169.254.0.0', 16, 'ipv4', 'link-local (cloud metadata)'],
  ['224.0.0.0', 4, 'ipv4', 'multicast'],
  ['240.0.0.0', 4, 'ipv4', 'reserved'],
  ['::1', 128, 'ipv6', 'loopback'],
  ['::', 128, 'ipv6', 'unspecified'],
  ['fe80::', 10, 'ipv6', 'link-local'],
  ['fd00:ec2::254', 128, 'ipv6', 'cloud metadata'],
  ['ff00::', 8, 'ipv6', 'multicast'],
];

/** Reachable with allowPrivateNetworks. */
const PRIVATE: [string, number, 'ipv4' | 'ipv6'][] = [
  ['10.0.0.0', 8, 'ipv4'],
  ['172.16.0.0', 12, 'ipv4'],
  ['192.168.0.0', 16, 'ipv4'],
  ['100.64.0.0', 10, 'ipv4'],
  ['fc00::', 7, 'ipv6'],
  // NAT64 embeds IPv4 addresses, private ones included.
  ['64:ff9b::', 96, 'ipv6'],
];

const always = ALWAYS.map(([net, bits, type, what]) => {
  const list = new BlockList();
  list.addSubnet(net, bits, type);
  return { list, what };
});
const privateNets = new BlockList();
for (const [net, bits, type] of PRIVATE) privateNets.addSubnet(net, bits, type);

export class DestinationRefused extends Error {}

/** Why `address` (an IP) may not be reached, or null. IPv4-mapped IPv6 addresses are judged as their IPv4 address. */
export function refusalOf(address: string, allowPrivateNetworks: boolean): string | null {
  const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  for (const { list, what } of always) if (list.check(address, type)) return `${address} is a ${what} address`;
  if (!allowPrivateNetworks && privateNets.check(address, type)) return `${address} is a private address (allowPrivateNetworks is off)`;
  return null;
}

export interface GuardOptions {
  allowPrivateNetworks: boolean;
  /** Host names or addresses exempt from the checks. */
  allowedHosts: readonly string[];
}

const bare = (host: string) => host.replace(/^\[|\]$/g, '').toLowerCase();

export class DestinationGuard {
  readonly #allowPrivate: boolean;
  readonly #allowed: ReadonlySet<string>;
  /** The callouts' connection pool; every new connection resolves through the checked lookup. */
  readonly dispatcher: Agent;

  constructor(o: GuardOptions) {
    this.#allowPrivate = o.allowPrivateNetworks;
    this.#allowed = new Set(o.allowedHosts.map(bare));
    this.dispatcher = new Agent({ connect: { lookup: this.#lookup } });
  }

  /** For a URL whose host is an address (net.connect skips the lookup for those): the refusal, or null. */
  checkAddressHost(url: URL): string | null {
    const host = bare(url.hostname);
    if (this.#allowed.has(host) || isIP(host) === 0) return null;
    return refusalOf(host, this.#allowPrivate);
  }

  #lookup: LookupFunction = (hostname, options, callback) => {
    const exempt = this.#allowed.has(bare(hostname));
    dnsLookup(hostname, { family: options.family, hints: options.hints, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      const usable = exempt ? addresses : addresses.filter((a) => refusalOf(a.address, this.#allowPrivate) === null);
      if (usable.length === 0) {
        const why = addresses.length > 0 ? refusalOf(addresses[0].address, this.#allowPrivate) : 'no address';
        return callback(new DestinationRefused(`${hostname} is refused: ${why}`), '', 0);
      }
      // net asks for every address when it races IPv4 and IPv6 (autoSelectFamily), for one otherwise.
      if (options.all) (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, usable);
      else callback(null, usable[0].address, usable[0].family);
    });
  };
}
