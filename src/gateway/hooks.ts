// Where API management plugs into the data plane: the steps of DESIGN.md's order of checks that are not routing.
import type { RequestContext } from './context.js';
import type { FaultFormat } from './errors.js';

export interface GatewayHooks {
  /** Credentials (401), before model lookup. Throws a GatewayError to refuse. */
  authenticate?(ctx: RequestContext): void | Promise<void>;
  /** Entitlement (401), policies and quotas (429), after model lookup and before picking. */
  admit?(ctx: RequestContext): void | Promise<void>;
  /** Once the answer is finished or abandoned, with usage when the model server reported it. */
  complete?(ctx: RequestContext): void;
  /** GET /v1/tollgate/quota: the caller's products and remaining quotas, authenticated by its own key. */
  quotaReport?(ctx: RequestContext): Promise<unknown>;
  /** Which error body shape clients get (APIMExtensionPolicy.faultFormat). */
  faultFormat?(): FaultFormat;
}
