// How tollgate checks the certificates of https model servers: the TLS half of undici's `connect` options, one object
// shared by the proxy's connection pools and the picker's scrapes, so both trust (and refuse) the same servers.
import { readFileSync } from 'node:fs';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';

export interface UpstreamTls {
  rejectUnauthorized: boolean;
  /** Node's default roots and the private CAs of GatewaySettings.upstream.caFile; absent without one. */
  secureContext?: SecureContext;
}

/** Verifying against Node's default roots: without GatewaySettings, and in tests. */
export const DEFAULT_UPSTREAM_TLS: UpstreamTls = { rejectUnauthorized: true };

/**
 * Node's default roots: its bundled ones and NODE_EXTRA_CA_CERTS's, which tls.rootCertificates leaves out. A file Node
 * could not read either was warned about at start, and Node trusts nothing of it.
 */
function defaultRoots(): string[] {
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  if (!extra) return [...rootCertificates];
  try {
    return [...rootCertificates, readFileSync(extra, 'latin1')];
  } catch {
    return [...rootCertificates];
  }
}

/**
 * The options for `upstream` (GatewaySettings.upstream, `ca` being caFile's certificates as read at load). A `ca`
 * option alone would replace Node's roots rather than add to them, and be parsed again for every connection (30 ms
 * with the roots): the context is built here, once per settings change.
 * @example new Pool(origin, { connect: { timeout, ...upstreamTls(settings.upstream) } })
 */
export function upstreamTls(upstream: { tlsRejectUnauthorized: boolean; ca?: string }): UpstreamTls {
  const rejectUnauthorized = upstream.tlsRejectUnauthorized;
  if (upstream.ca === undefined) return { rejectUnauthorized };
  return { rejectUnauthorized, secureContext: createSecureContext({ ca: [...defaultRoots(), upstream.ca] }) };
}
