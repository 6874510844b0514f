// Where API management plugs into the data plane: the steps of DESIGN.md's order of checks that are not routing,
// and the response flow. The ext_proc server calls the same hooks, so a request decides the same either way.
import type { OutgoingHttpHeaders } from 'node:http';
import type { RequestContext } from './context.js';
import type { FaultFormat } from './errors.js';
import type { CredentialSources } from '../policy/credential-sources.js';

/** An answer given without the model server (a cache hit, a CORS preflight, a token endpoint). */
export interface DirectResponse {
  status: number;
  headers: Record<string, string>;
  body: string | Buffer;
}

/**
 * What response policies do to the model server's answer. The proxy calls `headers` before anything is sent;
 * with `body`, a non-streamed answer is held whole (up to the body limit) and replaced by what it returns;
 * with `event`, each SSE event's `data:` payload of a streamed answer passes through it (null drops the event;
 * several payloads become several events), and an event too long to read comes as UNREAD_EVENT (sse-rewriter.ts).
 */
export interface ResponseFlow {
  headers?(status: number, headers: OutgoingHttpHeaders): void;
  body?(body: Buffer, status: number): Buffer | Promise<Buffer>;
  event?(data: string): string | string[] | null;
  /**
   * With `event`: once a stream has ended whole (not cut), the payloads of the events the flow still holds back, sent
   * as the stream's last (a sanitizer's held text of a stream that ended without finish_reason or [DONE]).
   */
  eventsAtEnd?(): string[];
  /** Once the answer is complete (not called for an abandoned one). */
  end?(): void;
  /**
   * The flow reads the answer and changes nothing (a cache filling): a compressed answer skips it, unread. A
   * non-streamed answer is then not held: it goes to the client as it comes, and `body` gets a copy once it is complete
   * (what `body` returns is not used), or nothing when the answer outgrew `observeLimit`.
   */
  observes?: boolean;
  /** The largest answer an observing flow's `body` reads, in bytes (the body limit when unset, and at most that). */
  observeLimit?: number;
}

export interface GatewayHooks {
  /**
   * First, for every request, before routing and the body: may answer at once through `ctx.directResponse`
   * (a CORS preflight, the OAuth token endpoint) or refuse (an IP access policy).
   */
  intercept?(ctx: RequestContext): void | Promise<void>;
  /** Credentials (401), before model lookup. Throws a GatewayError to refuse. */
  authenticate?(ctx: RequestContext): void | Promise<void>;
  /**
   * Entitlement (401), policies and quotas (429), after model lookup and before picking. Setting
   * `ctx.directResponse` answers without a model server.
   */
  admit?(ctx: RequestContext): void | Promise<void>;
  /** When the model server's answer starts: the response flow for it, if any policy has one. */
  respond?(ctx: RequestContext, status: number): ResponseFlow | undefined;
  /** Once the answer is finished or abandoned, with usage when the model server reported it. */
  complete?(ctx: RequestContext): void;
  /**
   * Before an error answer of the gateway's own, to a request that reached no model server (refused by a policy, shed,
   * timed out in the queue) or whose model server failed before any of its answer went out: what admission reserved
   * will be given back, and the headers may say so.
   */
  refused?(ctx: RequestContext): void;
  /** GET /v1/tollgate/quota: the caller's products and remaining quotas, authenticated by its own key. */
  quotaReport?(ctx: RequestContext): Promise<unknown>;
  /** Which error body shape clients get (APIMExtensionPolicy.faultFormat). */
  faultFormat?(): FaultFormat;
  /**
   * The headers and query parameters credential policies may read a credential from: withheld from the model server
   * by an ext_proc answer that Envoy applies before any policy has run (a STREAMED request body).
   */
  credentialSources?: CredentialSources;
}
