// The endpoint an HTTPRoute URL backend names, as the endpoint picker gives it to Envoy: ip:port, within the subset hint.
import type { EndpointConfig } from '../config/runtime-config.js';
import { gatewayError } from './errors.js';

/**
 * The Endpoint Picker Protocol wants <ip:port> (Envoy's original-destination parsing needs the port), and URL.host
 * drops a scheme's default one: filled in as a pool endpoint's is (runtime-config.ts). A backend outside a subset
 * hint is the protocol's 503, as for a pool with no endpoint in it.
 *
 * @example urlEndpoint('https://10.1.2.4/v1', undefined) // { url: 'https://10.1.2.4/v1', address: '10.1.2.4:443' }
 */
export function urlEndpoint(url: string, subset: ReadonlySet<string> | undefined): EndpointConfig {
  const u = new URL(url);
  const address = `${u.hostname}:${u.port || (u.protocol === 'https:' ? '443' : '80')}`;
  if (subset && !subset.has(address)) throw gatewayError('TG_ERR_NO_ENDPOINTS', `the URL backend ${address} is not in the subset hint`);
  return { url, address };
}
