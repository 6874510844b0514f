// The per-request context that every stage of the request path reads and writes.
import type { IncomingHttpHeaders } from 'node:http';
import type { ModelConfig, RouteBackend, RuntimeConfig } from '../config/runtime-config.js';
import type { EndpointConfig } from '../config/runtime-config.js';
import type { OpenAIBody, Operation } from './openai-request.js';
import type { Usage } from './usage.js';
import type { RequestTracer } from '../telemetry/tracing.js';
import type { CompletionText } from './completion-text.js';
import type { ApimState } from '../policy/types.js';
import type { DirectResponse, GatewayHooks } from './hooks.js';
import type { Span } from '../telemetry/tracing.js';
import type { EndpointPicker } from '../scheduler/types.js';
import type { StoredResponseRequest } from './stored-responses.js';
import type { RequestIdentity } from '../analytics/record.js';

export interface RequestContext {
  id: string;
  /** performance.now() at arrival. */
  start: number;
  /** The client's request headers (from node:http, or from Envoy's ext_proc messages). */
  headers: IncomingHttpHeaders;
  clientIp: string | undefined;
  method: string;
  /** Path with query string, as received; editQuery changes its query (later policies read the change). */
  url: string;
  /** editQuery changed url: ext_proc answers carry it as :path. */
  urlChanged?: boolean;
  /**
   * Query parameters taken out of what goes upstream only (a credential read from one): later policies still read
   * them in url, as they read a withheld credential header in headers.
   */
  withheldQuery?: Set<string>;
  path: string;
  operation?: Operation;
  body?: OpenAIBody;
  rawBody?: Buffer;
  /** The model the client asked for, and the one sent upstream. */
  model?: string;
  targetModel?: string;
  modelConfig?: ModelConfig;
  /** What the endpoint picker knows of the fleet: the context length of modelConfig's pool, for a cap tollgate sets. */
  fleet?: Pick<EndpointPicker, 'contextWindow'>;
  backend?: RouteBackend;
  priority: number;
  fairnessId: string;
  stream: boolean;
  /** Set when the body must be re-serialized before it goes upstream (model rewrite, token caps). */
  bodyChanged: boolean;
  /** Headers set on the upstream request after the client's are copied (AssignMessage, TokenInjection); null removes. */
  upstreamHeaders?: Record<string, string | null>;
  /** Headers added to the client's answer (rate-limit figures, identity). */
  responseHeaders: Record<string, string>;
  endpoint?: EndpointConfig;
  attempts: number;
  /** An attempt's request went out on a connection to a model server (an attempt is counted before: queued for one). */
  sentUpstream?: true;
  /** The status the model server answered with (the last attempt's); undefined when none answered. */
  upstreamStatus?: number;
  /**
   * The request went on to a model server whose answer this gateway was not shown (ext_proc with Envoy's response
   * events skipped): not known to have failed, so whatever it cost stands.
   */
  answerUnseen?: boolean;
  status?: number;
  errorCode?: string;
  ttftMs?: number;
  usage?: Usage;
  /** The id of the Responses API answer a model server stored (stored-responses.ts), read from the answer. */
  responseId?: string;
  /** Told as soon as responseId is read: the data plane knows the response from then on, before its answer ends. */
  onStoredResponse?: (ctx: RequestContext) => void;
  /**
   * A follow-up's stored conversation (`previous_response_id`), which its server puts before the follow-up's input:
   * that response's tokens as its server counted them (StoredResponse.tokens), when known.
   */
  historyTokens?: number;
  /** A request on a stored response (GET, DELETE or cancel of `/v1/responses/{id}`), routed to where it lives. */
  storedResponse?: StoredResponseRequest;
  /** Counted in the per-request metrics (metrics.requests was on when its model was resolved). */
  metered?: boolean;
  /** The answer's text, gathered only when logging.logPrompts is on (for the access log). */
  completion?: CompletionText;
  bytesIn: number;
  bytesOut: number;
  /** The policy engine's per-request state: identity, entitlement, token reservations to settle. */
  apim?: ApimState;
  /**
   * The caller as a tollgate ext_proc listener this gateway calls (an ExtensionChain) identified it, where this
   * gateway's own policies did not: it checked the key (and took it out of the request), this gateway records it.
   */
  extensionIdentity?: RequestIdentity;
  /**
   * tollgate turned on stream_options.include_usage for its own accounting, not the client: the proxy drops
   * the final usage-only SSE chunk (empty `choices`, a `usage` object) instead of passing it on.
   */
  stripStreamUsage?: boolean;
  /** Set by a policy to answer without a model server (a cache hit, a preflight). */
  directResponse?: DirectResponse;
  /**
   * Reads the request body (once; later calls share it), for policies that run before the body is parsed. `maxBytes`,
   * below `server.maxBodyBytes`, refuses a larger body with 413 (body_too_large): on the data plane's listener without
   * reading on, over ext_proc (where Envoy has sent it whole) before anyone parses it.
   */
  readBody?: (maxBytes?: number) => Promise<Buffer>;
  /**
   * The configuration and hooks the request started with (over ext_proc: was decided with). It ends with them too: a
   * reload or an API-management change meanwhile ran its response phase through hooks it never went through.
   */
  config?: RuntimeConfig;
  hooks?: GatewayHooks;
  /** The request's trace span (a shared no-op span when tracing is off). */
  span: Span;
  /** The tracer the request started with: its spans stay with it when a reload replaces the gateway's. */
  tracer: RequestTracer;
  /** The `policies` stage's span while the request policies run: each policy's own span goes under it. */
  policiesSpan?: Span;
  /** Whether the answer came from a cache (analytics). */
  cacheHit?: boolean;
  /** The usage record was written before the answer's last bytes (so finish() does not write another). */
  recorded?: boolean;
  /**
   * Another part of the client's gateway writes this request's usage record, so this process writes none (one record
   * per request, which billing reads): the policy decision point, for an ext_proc endpoint picker alone; the calling
   * gateway, for an ext_proc listener a tollgate ExtensionChain calls.
   */
  recordedElsewhere?: boolean;
  /** Only these endpoint addresses (host:port) may be picked: the ext_proc subset hint. */
  subset?: ReadonlySet<string>;
  /**
   * Which parts of `decide` run, for an ext_proc listener playing one role: 'policies' (a policy decision point:
   * no pick, the answer is `admitted`) or 'picker' (an endpoint picker: no policy hooks). Both when unset.
   */
  stages?: 'policies' | 'picker';
}

/**
 * Edits the query string (AssignMessage): later policies and the upstream request see the change. An edit that
 * returns false changed nothing: the client's query stays as it was written (URLSearchParams re-encodes it).
 */
export function editQuery(ctx: RequestContext, edit: (params: URLSearchParams) => boolean | void): void {
  const params = queryOf(ctx.url);
  if (edit(params) === false) return;
  ctx.url = withQuery(ctx.path, params);
  ctx.urlChanged = true;
}

/** The path and query the upstream request gets: url without the withheld parameters. */
export function upstreamUrl(ctx: RequestContext): string {
  if (!ctx.withheldQuery) return ctx.url;
  const params = queryOf(ctx.url);
  let removed = false;
  for (const name of ctx.withheldQuery) {
    if (!params.has(name)) continue;
    params.delete(name);
    removed = true;
  }
  return removed ? withQuery(ctx.path, params) : ctx.url;
}

/** The query parameters of a request target (none without a `?`). */
export function queryOf(url: string): URLSearchParams {
  const q = url.indexOf('?');
  return new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
}

function withQuery(path: string, params: URLSearchParams): string {
  const query = params.toString();
  return query ? `${path}?${query}` : path;
}
