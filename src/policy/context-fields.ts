// Fields the policy engine adds to the gateway's RequestContext. They belong in gateway/context.ts; until they move
// there, this augmentation declares them.
import type { ApimState } from './types.js';

declare module '../gateway/context.js' {
  interface RequestContext {
    /** The policy engine's per-request state: identity, entitlement, token reservations to settle. */
    apim?: ApimState;
    /**
     * tollgate turned on stream_options.include_usage for its own accounting, not the client: the proxy must drop
     * the final usage-only SSE chunk (empty `choices`, a `usage` object) instead of passing it on.
     */
    stripStreamUsage?: boolean;
  }
}
