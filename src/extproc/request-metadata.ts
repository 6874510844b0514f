// What Envoy's request messages say besides the headers: the client's address and the endpoint subset hint.
import type { IncomingHttpHeaders } from 'node:http';
import type { ProcessingRequest } from './messages.js';
import { SUBSET_KEY, SUBSET_NAMESPACE } from './request-answer.js';
import { metadataValue } from './struct.js';

/** Envoy's view of the client: x-envoy-external-address, else the hop it appended to x-forwarded-for. */
export function clientIp(headers: IncomingHttpHeaders): string | undefined {
  const external = headers['x-envoy-external-address'];
  if (typeof external === 'string' && external !== '') return external;
  const xff = headers['x-forwarded-for'];
  if (typeof xff !== 'string' || xff === '') return undefined;
  const last = xff.lastIndexOf(',');
  return xff.slice(last + 1).trim() || undefined;
}

/**
 * envoy.lb.subset_hint / x-gateway-destination-endpoint-subset: a list of ip:port (a comma-separated string is
 * accepted too). Undefined when absent; an empty set when present but empty (nothing is eligible then).
 */
export function subsetHint(msg: ProcessingRequest): Set<string> | undefined {
  const v = metadataValue(msg.metadata_context?.filter_metadata, SUBSET_NAMESPACE, SUBSET_KEY);
  if (v === undefined) return undefined;
  const items = Array.isArray(v) ? v : typeof v === 'string' ? v.split(',') : [];
  const out = new Set<string>();
  for (const item of items) if (typeof item === 'string' && item.trim() !== '') out.add(item.trim());
  return out;
}
