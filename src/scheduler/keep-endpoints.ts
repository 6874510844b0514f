// Narrowing a list of endpoints on the decision path, where usually none is dropped.
import type { EndpointState } from './endpoint-state.js';

/** The endpoints `ok` keeps, in order: the same array when it keeps them all, so that case allocates nothing. */
export function keepEndpoints(endpoints: readonly EndpointState[], ok: (ep: EndpointState) => boolean): readonly EndpointState[] {
  let out: EndpointState[] | null = null;
  for (let i = 0; i < endpoints.length; i++) {
    const kept = ok(endpoints[i]);
    if (!kept && !out) out = endpoints.slice(0, i);
    else if (kept && out) out.push(endpoints[i]);
  }
  return out ?? endpoints;
}
