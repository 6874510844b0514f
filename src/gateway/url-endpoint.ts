// The endpoint an HTTPRoute URL backend names, as the endpoint picker gives it to Envoy: ip:port, within the subset hint.
import type { EndpointConfig } from '../config/runtime-config.js';
import { gatewayError } from './errors.js';

/**
 * The backend's endpoint (its address <host:port> compiled with the configuration: the Endpoint Picker Protocol wants
 * the port, which URL.host drops for a scheme's default). A backend outside a subset hint is the protocol's 503, as
 * for a pool with no endpoint in it.
 *
 * @example urlEndpoint({ url: 'https://10.1.2.4', address: '10.1.2.4:443' }, new Set(['10.1.2.4:443']))
 */
export function urlEndpoint(backend: EndpointConfig, subset: ReadonlySet<string> | undefined): EndpointConfig {
  if (subset && !subset.has(backend.address)) throw gatewayError('TG_ERR_NO_ENDPOINTS', `the URL backend ${backend.address} is not in the subset hint`);
  return { url: backend.url, address: backend.address };
}
