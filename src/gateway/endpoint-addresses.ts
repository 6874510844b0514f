// The ip:port the Endpoint Picker Protocol gives Envoy for an endpoint the configuration names by host (a Service's DNS
// name, a docker-compose service, localhost): Envoy routes to an IP literal, and its subset hints name endpoints by IP.
// Names are looked up when a configuration applies and every DNS_REFRESH_MS after, never on a request's path. The data
// plane and the scrapes connect by name (each new connection looks it up) and never read the address.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { upstreamEndpoints, type EndpointConfig, type RuntimeConfig } from '../config/runtime-config.js';
import type { Logger } from '../lib/logger.js';
import { withTimeout } from '../lib/with-timeout.js';

/** How often every name is looked up again: Envoy's dns_refresh_rate default. */
export const DNS_REFRESH_MS = 5_000;
/**
 * A lookup slower than this keeps the name's last address (and holds a reload or a start no longer). It runs on, as
 * getaddrinfo cannot be cancelled, and no other lookup of that name starts meanwhile: a hung resolver does not fill
 * libuv's four threads with it.
 */
export const LOOKUP_TIMEOUT_MS = 2_000;

/** Every address a name resolves to, in the resolver's order (dns.lookup with `all`). */
export type LookupAll = (host: string) => Promise<readonly { address: string; family: number }[]>;

const systemLookup: LookupAll = (host) => lookup(host, { all: true });

/** The endpoints (pools' and HTTPRoute URL backends') of `config` whose URL names a host rather than an IP, by host. */
function endpointsByHost(config: RuntimeConfig): Map<string, EndpointConfig[]> {
  const out = new Map<string, EndpointConfig[]>();
  for (const ep of upstreamEndpoints(config)) {
    const host = new URL(ep.url).hostname;
    // An IPv6 literal keeps its brackets in URL.hostname (and in the address, as Envoy writes it).
    if (isIP(host) !== 0 || host.charCodeAt(0) === 0x5b) continue;
    const eps = out.get(host);
    if (eps) eps.push(ep);
    else out.set(host, [ep]);
  }
  return out;
}

/** Each endpoint's address becomes `ip` on its own port. */
function setAddress(endpoints: readonly EndpointConfig[], ip: string): void {
  const host = isIP(ip) === 6 ? `[${ip}]` : ip;
  for (const ep of endpoints) ep.address = `${host}${ep.address.slice(ep.address.lastIndexOf(':'))}`;
}

/**
 * One address per name, as a LOGICAL_DNS cluster of Envoy takes one: an endpoint is one model server, scraped and
 * counted as one. The one it has while the name still resolves to it (round-robin DNS answers in another order each
 * time), else the first IPv4 address, else the first (Envoy's V4_PREFERRED: a server bound to 0.0.0.0 is not on ::1).
 */
function choose(answers: readonly { address: string; family: number }[], current: string | undefined): string | undefined {
  if (current !== undefined && answers.some((a) => a.address === current)) return current;
  return (answers.find((a) => a.family === 4) ?? answers[0])?.address;
}

/**
 * @example
 * const addresses = new EndpointAddresses(logger);
 * await addresses.resolve(config); // http://vllm:8000 → address 10.0.0.5:8000
 * addresses.start(() => gateway.config);
 */
export class EndpointAddresses {
  readonly #logger: Logger;
  readonly #lookup: LookupAll;
  /** The address each name was last found at, across reloads: what its endpoints keep while a lookup fails. */
  readonly #found = new Map<string, string>();
  /** The lookup of each name under way (one at a time, also past its timeout). */
  readonly #pending = new Map<string, Promise<void>>();
  /** Names whose last lookup failed: logged when that starts, not at every refresh. */
  readonly #failing = new Set<string>();
  #timer: NodeJS.Timeout | undefined;

  constructor(logger: Logger, lookupAll: LookupAll = systemLookup) {
    this.#logger = logger;
    this.#lookup = lookupAll;
  }

  /**
   * Gives the host-name endpoints of `config` their addresses: at once for names found before, after a lookup for the
   * others (resolves when those are done or timed out; never rejects). A name never found keeps `name:port`.
   */
  resolve(config: RuntimeConfig): Promise<void> {
    const unknown: Promise<void>[] = [];
    for (const [host, endpoints] of endpointsByHost(config)) {
      const ip = this.#found.get(host);
      if (ip !== undefined) setAddress(endpoints, ip);
      else unknown.push(this.#resolveHost(host, endpoints));
    }
    return Promise.all(unknown).then(() => {});
  }

  /** Looks up every name of `config` again; the endpoints of one now found elsewhere take its new address. */
  async refresh(config: RuntimeConfig): Promise<void> {
    await Promise.all([...endpointsByHost(config)].map(([host, endpoints]) => this.#resolveHost(host, endpoints)));
  }

  /** Refreshes the configuration in force every DNS_REFRESH_MS until stop(). */
  start(config: () => RuntimeConfig): void {
    clearInterval(this.#timer);
    this.#timer = setInterval(() => void this.refresh(config()), DNS_REFRESH_MS).unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #resolveHost(host: string, endpoints: readonly EndpointConfig[]): Promise<void> {
    let pending = this.#pending.get(host);
    if (!pending) {
      pending = this.#lookup(host)
        .then(
          (answers) => this.#answered(host, answers),
          (err: unknown) => this.#failed(host, (err as Error).message),
        )
        .finally(() => this.#pending.delete(host));
      this.#pending.set(host, pending);
    }
    return withTimeout(pending, LOOKUP_TIMEOUT_MS, `looking up ${host}`).then(
      () => {
        const ip = this.#found.get(host);
        if (ip !== undefined) setAddress(endpoints, ip);
      },
      (err: Error) => this.#failed(host, err.message),
    );
  }

  #answered(host: string, answers: readonly { address: string; family: number }[]): void {
    const was = this.#found.get(host);
    const ip = choose(answers, was);
    if (ip === undefined) return this.#failed(host, 'no address');
    this.#found.set(host, ip);
    if (this.#failing.delete(host) || (was !== undefined && was !== ip)) {
      this.#logger.info({ host, address: ip, was: was ?? null }, 'endpoint host name resolved: the endpoint picker gives Envoy this address');
    }
  }

  #failed(host: string, error: string): void {
    if (this.#failing.has(host)) return;
    this.#failing.add(host);
    const kept = this.#found.get(host);
    if (kept !== undefined) this.#logger.warn({ host, error, address: kept }, 'endpoint host name lookup failed: its last address stays');
    else this.#logger.warn({ host, error }, 'endpoint host name cannot be resolved: the endpoint picker gives Envoy the name, which Envoy cannot route to, until it is');
  }
}
