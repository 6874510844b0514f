// The data plane's request handler: parse → credentials → model lookup → policies → pick → proxy → account,
// in the order DESIGN.md fixes. The stages before the proxy and the accounting after it are transport-neutral
// (`decide`, `finish`), so the ext_proc server runs the very same code for Envoy. The configuration and hooks are
// swapped atomically on reload; in-flight requests keep theirs (ctx.config, ctx.hooks).
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { EndpointConfig, PoolConfig, RuntimeConfig } from '../config/runtime-config.js';
import type { Logger } from '../lib/logger.js';
import { serializeMessages } from '../lib/tokenizer.js';
import { promptLayout } from '../lib/prompt-layout.js';
import { promptCharsRead } from '../scheduler/prompt-prefix.js';
import { serializeBody } from './body-serialize.js';
import type { EndpointPicker, Pick } from '../scheduler/types.js';
import type { RequestMetrics } from '../telemetry/request-metrics.js';
import type { ApimMetrics } from '../telemetry/apim-metrics.js';
import { NOOP_SPAN, NOOP_TRACER, type RequestTracer } from '../telemetry/tracing.js';
import type { AnalyticsPipeline, RequestIdentity } from '../analytics/index.js';
import { clipName } from '../lib/clip-name.js';
import { assertUncompressed, lingerAfterRefusal, readBody } from './body.js';
import { clipText, CompletionText } from './completion-text.js';
import { ClientPickRequest, onResponseGone, type OnClientGone } from './client-pick-request.js';
import { upstreamUrl, type RequestContext } from './context.js';
import { urlEndpoint } from './url-endpoint.js';
import { GatewayError, gatewayError, type ErrorResponse } from './errors.js';
import { dropUnsendableHeaders } from './header-values.js';
import type { DirectResponse, GatewayHooks } from './hooks.js';
import { isModelsPath, isModelsRequest, modelsAnswer } from './models-list.js';
import { OPERATION_PATHS, parseJsonBody, parseOpenAIBody, type OpenAIBody } from './openai-request.js';
import { connectionListed, proxyRequest, type ProxyTarget } from './proxy.js';
import { matchRoute, resolveModel } from './resolve-model.js';
import { IDENTITY_HEADERS, identityHeaderValues } from './identity-headers.js';
import { assertSafePath } from './safe-path.js';
import type { UpstreamPools } from './upstream-pools.js';
import { requestStreamUsage } from './stream-usage.js';
import { accountOwnAnswer } from './own-answer.js';
import { normalizeAddress } from '../lib/ip-address.js';
import { createsStoredResponse, isResponsesOperation, storedResponseRequest, type FindRecordedResponse } from './stored-responses.js';
import { fairnessTenant, keyedTenant } from './tenant.js';
import { responseNotFound, StoredResponseRouting } from './stored-response-routing.js';
import { InFlightCohorts } from './in-flight-cohorts.js';

/**
 * Client headers that never go upstream: hop-by-hop, the client's credentials, tollgate's own routing headers,
 * accept-encoding (see #forward), and the identity headers tollgate itself sets (a client's copies would tell the
 * model server it is another app).
 */
export const NOT_FORWARDED = new Set([
  'host', 'connection', 'keep-alive', 'transfer-encoding', 'content-length', 'proxy-connection', 'te', 'upgrade', 'trailer',
  'authorization', 'proxy-authorization', 'x-api-key', 'x-gateway-inference-objective', 'x-gateway-inference-fairness-id', 'expect', 'accept-encoding',
  ...IDENTITY_HEADERS,
]);
const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

export interface DataPlaneDeps {
  config: RuntimeConfig;
  picker: EndpointPicker;
  pools: UpstreamPools;
  metrics: RequestMetrics;
  apimMetrics?: ApimMetrics;
  logger: Logger;
  hooks?: GatewayHooks;
  tracer?: RequestTracer;
  /** Where every finished request's usage record goes. */
  analytics?: AnalyticsPipeline;
  /** Where a stored response this process did not see made is looked up (the usage records, shared by replicas). */
  findResponse?: FindRecordedResponse;
}

/** Where a decided request goes: the picker's choice, or an HTTPRoute's URL; `admitted` when routing is not ours (ctx.stages). */
export type Decision =
  | { kind: 'pick'; pick: Pick }
  | { kind: 'url'; endpoints: EndpointConfig[] }
  | { kind: 'direct'; response: DirectResponse }
  | { kind: 'admitted' };

const NO_HOOKS: GatewayHooks = {};

function promptOf(body: OpenAIBody): string {
  if (Array.isArray(body.messages)) return serializeMessages(body.messages);
  const p = body.prompt ?? body.input;
  return typeof p === 'string' ? p : p === undefined ? '' : JSON.stringify(p);
}

/**
 * The prompt the picker reads for prefix affinity: a chat request as its model server lays it out (promptLayout), laid
 * out in full only as far as the pool's profile reads it.
 */
function pickPromptOf(body: OpenAIBody, pool: PoolConfig): string {
  return Array.isArray(body.messages) ? promptLayout(body.messages, body.tools, promptCharsRead(pool)) : promptOf(body);
}

/** The request target in absolute form (`http://host/v1/...`, which servers must accept: RFC 9112 §3.2.2), in origin form. */
const ABSOLUTE_FORM = /^https?:\/\/[^/?#]*/i;

/**
 * Sets the route backend a request takes (an HTTPRoute), or throws: 404 when neither a route nor an OpenAI operation
 * takes its path, 405 when its path takes another method (POST for the operations; GET and HEAD for /v1/models,
 * which answered other methods 404 as though it did not exist).
 */
export function routeRequest(config: RuntimeConfig, ctx: RequestContext): void {
  ctx.backend = config.routes.length > 0 ? matchRoute(config, ctx) : undefined;
  const operation = OPERATION_PATHS[ctx.path];
  // A stored response is reached where it lives, whichever HTTPRoute takes its path (and its owner checked).
  if (!operation) ctx.storedResponse = storedResponseRequest(ctx.method, ctx.path);
  if (!operation && !ctx.backend && !ctx.storedResponse) {
    if (isModelsPath(ctx.path)) throw gatewayError('TG_ERR_METHOD_NOT_ALLOWED', `${ctx.path} accepts GET and HEAD only`, { allow: 'GET, HEAD' });
    throw gatewayError('TG_ERR_ROUTE_NOT_FOUND', `No route for ${ctx.method} ${ctx.path}`);
  }
  if (operation && ctx.method !== 'POST') throw gatewayError('TG_ERR_METHOD_NOT_ALLOWED', `${ctx.path} accepts POST only`, { allow: 'POST' });
}

/** A fresh context for a request with these headers. */
export function newContext(method: string, target: string, headers: IncomingHttpHeaders, clientIp: string | undefined): RequestContext {
  let url = target;
  if (target.charCodeAt(0) !== 0x2f) {
    url = target.replace(ABSOLUTE_FORM, '');
    if (url.charCodeAt(0) !== 0x2f && target !== url) url = `/${url}`;
  }
  const incomingId = headers['x-request-id'];
  const q = url.indexOf('?');
  return {
    id: typeof incomingId === 'string' && REQUEST_ID.test(incomingId) ? incomingId : randomUUID(),
    start: performance.now(),
    headers,
    clientIp,
    method,
    url,
    path: q === -1 ? url : url.slice(0, q),
    priority: 0,
    fairnessId: '',
    stream: false,
    bodyChanged: false,
    responseHeaders: {},
    attempts: 0,
    bytesIn: 0,
    bytesOut: 0,
    span: NOOP_SPAN,
    tracer: NOOP_TRACER,
  };
}

/** Whether the client's connection is gone (`res.destroyed` follows once its close event has fired; the socket's flag at once). */
function clientGone(req: IncomingMessage, res: ServerResponse): boolean {
  return res.destroyed || req.socket.destroyed;
}

/** Who made the request, as the policy engine (or else a tollgate extension) found it, for the usage record. */
export function identityOf(ctx: RequestContext): RequestIdentity | undefined {
  const state = ctx.apim;
  const key = state?.key;
  if (!key) return ctx.extensionIdentity;
  return {
    developerId: key.developerId,
    developerEmail: key.developerEmail,
    appId: key.appId,
    appName: key.appName,
    keyId: key.keyId,
    productName: state.product?.name,
    operationSet: state.operationSet?.name,
  };
}

export class DataPlane {
  config: RuntimeConfig;
  hooks: GatewayHooks;
  readonly #picker: EndpointPicker;
  readonly #pools: UpstreamPools;
  readonly #metrics: RequestMetrics;
  readonly #logger: Logger;
  /** Replaced on a reload that changes the tracing settings; each request keeps the one it started with (ctx.tracer). */
  tracer: RequestTracer;
  readonly #apimMetrics: ApimMetrics | undefined;
  readonly #analytics: AnalyticsPipeline | undefined;
  readonly #created = Math.floor(Date.now() / 1000);
  /** Which endpoint holds each stored Responses API answer (ext_proc's requests, decided here too, share it). */
  readonly storedResponses: StoredResponseRouting;
  #inflight = 0;
  /** Every request between begin() and finish(), ext_proc's too: what a reload replaced is let go once those before it are over. */
  readonly #begun = new InFlightCohorts<RequestContext>();
  #draining = false;
  #cutting = false;
  #idleWaiters: (() => void)[] = [];

  constructor(deps: DataPlaneDeps) {
    this.config = deps.config;
    this.#picker = deps.picker;
    this.#pools = deps.pools;
    this.#metrics = deps.metrics;
    this.#logger = deps.logger;
    this.hooks = deps.hooks ?? {};
    this.tracer = deps.tracer ?? NOOP_TRACER;
    this.#apimMetrics = deps.apimMetrics;
    this.#analytics = deps.analytics;
    this.storedResponses = new StoredResponseRouting(() => this.config, deps.findResponse, deps.logger);
    // Before the pipeline starts (Gateway.listen): what a crashed process spooled is known from the first request.
    deps.analytics?.onBacklogResponse((id, recorded) => this.storedResponses.recall(id, recorded));
  }

  get inflight(): number {
    return this.#inflight;
  }

  /** What the endpoint picker knows of the fleet: the context lengths GET /v1/models reports (ext_proc answers it too). */
  get fleet(): NonNullable<RequestContext['fleet']> {
    return this.#picker;
  }

  /**
   * Gives a new request what is in force now (configuration, hooks, tracer and its span), which it keeps to its end
   * (finish) whatever a reload installs meanwhile. ext_proc's streams begin here too.
   */
  begin(ctx: RequestContext): void {
    ctx.config = this.config;
    ctx.hooks = this.hooks;
    ctx.tracer = this.tracer;
    ctx.span = ctx.tracer.startRequestSpan(ctx);
    this.#begun.begin(ctx);
  }

  /** Resolves once the requests begun so far are over, and with them every use of what they began with. */
  begunOver(): Promise<void> {
    return this.#begun.over();
  }

  /** Stops taking new requests (503) and resolves once in-flight ones have finished. */
  drain(): Promise<void> {
    this.#draining = true;
    if (this.#inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * The shutdown grace is over and the gateway is about to close the connections still open: the requests they carry
   * end as `shutting_down`, not as if their clients had hung up (operators read client_closed spikes at every rolling
   * deploy as clients giving up).
   */
  cut(): void {
    this.#cutting = true;
  }

  /** Counts a request node:http answered itself (listen.ts): it never reached `handle`, yet a client was refused. */
  refused = (status: number): void => {
    if (this.config.settings.metrics.requests) this.#apimMetrics?.refused(status);
  };

  handle = (req: IncomingMessage, res: ServerResponse): void => {
    const ctx = newContext(req.method ?? 'GET', req.url ?? '/', req.headers, req.socket.remoteAddress);
    this.begin(ctx);
    this.#inflight++;
    this.#serve(ctx, req, res).then(
      () => this.#done(ctx),
      (err) => {
        const answer = this.errorResponse(ctx, err);
        // A hang-up (in the queue, mid-body) is recorded with no status (errorResponse): nobody is left to send it to.
        if (ctx.errorCode === 'client_closed') return this.#done(ctx);
        // Within the time the body had anyway (Node's own request timeout, a little later, would answer again).
        if (answer.status === 413) lingerAfterRefusal(req, answer.headers, ctx.config!.settings.server.bodyTimeout - (performance.now() - ctx.start));
        return this.#send(ctx, res, answer).then(() => this.#done(ctx));
      },
    );
  };

  async #serve(ctx: RequestContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Only a connection opened before the drain is still there to ask (new ones are refused, idle ones closed): it
    // closes after this answer, so the client's next try opens one elsewhere.
    if (this.#draining) throw gatewayError('TG_ERR_SHUTTING_DOWN', undefined, { connection: 'close' });
    // A model id may hold slashes (`org/model`), which the SDKs' models.retrieve() sends encoded: that answer is
    // tollgate's own, never sent upstream, so an encoded separator there resolves nothing.
    const models = isModelsRequest(ctx.method, ctx.path);
    if (!models) assertSafePath(ctx.path);
    const config = ctx.config!;
    const hooks = ctx.hooks!;
    let body: Promise<Buffer> | undefined;
    const readOnce = (maxBytes = Infinity) => (body ??= readBody(req, Math.min(maxBytes, config.settings.server.maxBodyBytes), config.settings.server.bodyTimeout));
    if (hooks.intercept) {
      ctx.readBody = readOnce;
      await hooks.intercept(ctx);
      if (ctx.directResponse) return this.#send(ctx, res, ctx.directResponse);
    }
    if (models) {
      await hooks.authenticate?.(ctx);
      return this.#send(ctx, res, modelsAnswer(config, ctx, this.#created, this.#picker));
    }
    if (ctx.method === 'GET' && ctx.path === '/v1/tollgate/quota') {
      if (!hooks.quotaReport) throw gatewayError('TG_ERR_ROUTE_NOT_FOUND', 'API keys are not in use on this gateway');
      const report = await hooks.quotaReport(ctx);
      return this.#send(ctx, res, { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(report) });
    }
    routeRequest(config, ctx);
    const raw = await readOnce();
    const decision = await this.decide(ctx, raw, onResponseGone(res));
    // The policies and the pick take time (a ServiceCallout, a wait in the queue): a client gone meanwhile must not
    // have its request run and charged on a model server. Checked here because the proxy's close listener, which
    // comes next, never hears of a close that came before it (and nothing is awaited between this and it).
    if (clientGone(req, res)) {
      if (decision.kind === 'pick') decision.pick.release(decision.pick.endpoints[0], { reached: false, abandoned: true });
      throw gatewayError('TG_ERR_CLIENT_CLOSED', 'The client went away before its request was sent to a model server');
    }
    if (decision.kind === 'direct') await this.#send(ctx, res, decision.response);
    else if (decision.kind === 'url') await this.#forward(ctx, res, decision.endpoints, undefined, 1);
    else if (decision.kind === 'pick') await this.#forward(ctx, res, decision.pick.endpoints, decision.pick, 1 + config.settings.upstream.maxRetries);
  }

  /**
   * Everything between the request body and the upstream call: parse, credentials, model lookup, policies,
   * picking. Throws a GatewayError to refuse. `ctx.backend` must already be set when HTTPRoutes apply. `onGone`
   * takes the request out of the flow-control queue if its client goes away while it waits there.
   */
  async decide(ctx: RequestContext, raw: Buffer, onGone?: OnClientGone): Promise<Decision> {
    // Set already when the request came through `handle`; over ext_proc it takes them here.
    const config = (ctx.config ??= this.config);
    ctx.hooks ??= this.hooks;
    const hooks = ctx.stages === 'picker' ? NO_HOOKS : ctx.hooks;
    ctx.rawBody = raw;
    ctx.bytesIn = raw.length;
    const operation = OPERATION_PATHS[ctx.path];
    if (config.settings.logging.logPrompts) ctx.completion = new CompletionText();
    if (ctx.storedResponse) return this.#decideStored(ctx, hooks, config);
    if (operation) {
      ctx.operation = operation;
      assertUncompressed(ctx.headers);
      ctx.body = parseOpenAIBody(raw, operation);
      ctx.model = ctx.body.model;
      ctx.stream = ctx.body.stream === true;
    }
    await this.#policies(ctx, hooks, this.#modelRequest, config);
    if (ctx.directResponse) return { kind: 'direct', response: ctx.directResponse };
    if (ctx.backend?.kind === 'url') return { kind: 'url', endpoints: [urlEndpoint(ctx.backend, ctx.subset)] };
    if (ctx.stages === 'policies') return { kind: 'admitted' };
    const tracer = ctx.tracer;
    const picking = tracer.startChild(ctx.span, 'pick');
    try {
      const pick = await this.#picker.pick(new ClientPickRequest(ctx, pickPromptOf(ctx.body!, ctx.modelConfig!.pool), onGone, this));
      if (pick.endpoints.length === 0) throw gatewayError('TG_ERR_NO_ENDPOINTS');
      tracer.endChild(picking);
      return { kind: 'pick', pick };
    } catch (err) {
      tracer.endChild(picking, err);
      throw err;
    }
  }

  /**
   * What a model request settles once its caller is known: its model, metrics, stream usage, tenant, and what a
   * Responses API creation needs. A property, not a closure per request: it is on every request's path.
   */
  readonly #modelRequest = (ctx: RequestContext, config: RuntimeConfig): Promise<void> | undefined => {
    if (ctx.backend?.kind !== 'url') {
      if (!ctx.body) throw gatewayError('TG_ERR_ROUTE_NOT_FOUND', `No route for ${ctx.method} ${ctx.path}`);
      resolveModel(config, ctx);
      ctx.fleet = this.#picker;
      if (config.settings.metrics.requests) {
        ctx.metered = true;
        this.#metrics.started(ctx.model!);
      }
      ctx.fairnessId = fairnessTenant(ctx);
    }
    // A stream's tokens (usage records, which billing reads, and the token metrics) come only from the usage chunk a
    // server sends when asked: ask for every stream, an HTTPRoute URL backend's too, before the policies (a cache keys
    // what is sent). A client that did not ask does not see it (stripped on the way back).
    if (ctx.stream && ctx.stages !== 'picker' && (config.settings.analytics.enabled || config.settings.metrics.requests)) requestStreamUsage(ctx);
    if (ctx.operation === 'responses') return this.#responsesRequest(ctx);
    return ctx.backend?.kind === 'url' && isResponsesOperation(ctx.path) ? this.#responsesOperation(ctx) : undefined;
  };

  /**
   * The policies span: the credentials, then `identified` (what the request's kind settles once its caller is known:
   * its model and tenant, against the configuration the request started with), then the admission policies.
   */
  async #policies<T>(
    ctx: RequestContext,
    hooks: GatewayHooks,
    identified: (ctx: RequestContext, config: RuntimeConfig) => T | Promise<T>,
    config: RuntimeConfig,
  ): Promise<T> {
    const tracer = ctx.tracer;
    const policies = tracer.startChild(ctx.span, 'policies');
    ctx.policiesSpan = policies;
    try {
      // Each awaited only when it is a promise: on an in-process counter store nearly every request passes at once,
      // without another turn.
      const authenticated = hooks.authenticate?.(ctx);
      if (authenticated) await authenticated;
      let settled = identified(ctx, config);
      if (settled instanceof Promise) settled = await settled;
      const admitted = hooks.admit?.(ctx);
      if (admitted) await admitted;
      tracer.endChild(policies);
      return settled as T;
    } catch (err) {
      tracer.endChild(policies, err);
      throw err;
    }
  }

  /**
   * A GET, HEAD, DELETE, cancel or input_items of a stored response: the key is checked, then where the response
   * lives is looked up and the key's entitlement checked against the model that made it, then the request goes to
   * the endpoint holding it, in whichever pool or HTTPRoute lists it (over ext_proc, a policy decision point alone
   * checks its owner and leaves the routing to Envoy's picker). Without a valid key nothing is looked up (a lookup
   * may query the records), nor said of whether an id exists; a valid key that may not reach it hears what it would
   * of an unknown one.
   */
  async #decideStored(ctx: RequestContext, hooks: GatewayHooks, config: RuntimeConfig): Promise<Decision> {
    const { id } = ctx.storedResponse!;
    let endpoint: EndpointConfig | undefined;
    try {
      endpoint = await this.#policies(ctx, hooks, (ctx) => this.#storedAt(ctx, id, config), config);
    } catch (err) {
      // A key refused for the model that made it (an entitlement, after the key was found good) would name the model.
      if (err instanceof GatewayError && err.status === 401 && ctx.apim?.key) throw responseNotFound(id);
      throw err;
    }
    if (ctx.directResponse) return { kind: 'direct', response: ctx.directResponse };
    return endpoint ? { kind: 'url', endpoints: [endpoint] } : { kind: 'admitted' };
  }

  /** Once the caller is known: where stored response `id` is reached for it, or undefined for Envoy's picker to say. */
  async #storedAt(ctx: RequestContext, id: string, config: RuntimeConfig): Promise<EndpointConfig | undefined> {
    const lookup = await this.storedResponses.lookup(id, keyedTenant(ctx) ?? '');
    if (lookup.found) ctx.model = lookup.found.model;
    const held = this.storedResponses.reachable(lookup, id, ctx);
    // A policy decision point alone checks the owner only: Envoy's own picker routes, and the server says.
    if (ctx.stages === 'policies') return undefined;
    // One this gateway does not know (without keys) is passed to an HTTPRoute's URL backend, whose own store says; a
    // pool's endpoints cannot be told apart.
    const at = held ? this.storedResponses.holder(held, config) : ctx.backend?.kind === 'url' ? ctx.backend : undefined;
    if (!at) throw responseNotFound(id);
    // Within an ext_proc subset hint, as any routed request.
    return urlEndpoint(at, ctx.subset);
  }

  /**
   * What a Responses API creation settles once its caller is known: with API keys a client may not choose the id
   * (vLLM's `request_id` becomes it: one app could store over another's), a follow-up goes where it continues, and
   * the response it stores is known here as soon as its id is read.
   */
  #responsesRequest(ctx: RequestContext): Promise<void> | undefined {
    const body = ctx.body!;
    if (body.request_id !== undefined && keyedTenant(ctx) !== undefined) {
      throw gatewayError('TG_ERR_INVALID_REQUEST', 'request_id: not accepted on /v1/responses with API keys (a stored response id is the model server\'s to choose)', undefined, 'request_id');
    }
    if (createsStoredResponse(ctx)) ctx.onStoredResponse = this.#learnStored;
    const previous = body.previous_response_id;
    return typeof previous === 'string' ? this.storedResponses.continueAt(ctx, previous) : undefined;
  }

  readonly #learnStored = (ctx: RequestContext): void => this.storedResponses.track(ctx);

  /**
   * OpenAI's other operations below /v1/responses/ (input_tokens, compact), passed to an HTTPRoute's URL: their
   * `model` is the one a key's operation sets are checked against, as a creation's is, and one that names a
   * `previous_response_id` reads that conversation, so it is checked and routed as a follow-up is.
   */
  #responsesOperation(ctx: RequestContext): Promise<void> | undefined {
    assertUncompressed(ctx.headers);
    // Refused, not passed on unchecked, when it does not parse as every request's body does: its server may read it
    // another way (Python's json reads UTF-16) and find a previous_response_id in it, another app's.
    const body = parseJsonBody(ctx.rawBody!) as { model?: unknown; previous_response_id?: unknown } | null;
    if (typeof body?.model === 'string') ctx.model = body.model;
    const previous = body?.previous_response_id;
    return typeof previous === 'string' ? this.storedResponses.continueAt(ctx, previous) : undefined;
  }

  /** The body to send upstream: the client's bytes, or re-serialized when a stage changed it. */
  upstreamBody(ctx: RequestContext): Buffer | null {
    if (ctx.bodyChanged && ctx.body) {
      ctx.body.model = ctx.targetModel ?? ctx.body.model;
      return serializeBody(ctx.body, ctx.rawBody);
    }
    return ctx.rawBody ?? null;
  }

  async #forward(ctx: RequestContext, res: ServerResponse, endpoints: EndpointConfig[], pick: Pick | undefined, maxAttempts: number): Promise<void> {
    const headers: Record<string, string | string[]> = {};
    const incoming = ctx.headers;
    for (const name in incoming) if (!NOT_FORWARDED.has(name)) headers[name] = incoming[name]!;
    for (const name of connectionListed(incoming.connection)) delete headers[name];
    const body = this.upstreamBody(ctx);
    // A coding (only identity gets past decide) describes the client's bytes, not a body tollgate wrote.
    if (body !== ctx.rawBody) delete headers['content-encoding'];
    if (ctx.apim?.key) for (const [name, value] of identityHeaderValues(ctx)) if (value !== undefined) headers[name] = value;
    headers['x-request-id'] = ctx.id;
    // The client's address appended (Envoy's default, nginx's $proxy_add_x_forwarded_for): what the model server and
    // any proxy before it log and limit by is the client, not tollgate.
    const ip = ctx.clientIp && normalizeAddress(ctx.clientIp);
    if (ip) {
      const prior = headers['x-forwarded-for'];
      headers['x-forwarded-for'] = prior ? `${[prior].flat().join(', ')}, ${ip}` : ip;
    }
    // tollgate reads the answer (usage for token quotas and analytics, response policies, SSE rewrites): a client's
    // accept-encoding: gzip passed on let a compressing model server (or a proxy before it) hide it from all of them.
    headers['accept-encoding'] = 'identity';
    if (ctx.upstreamHeaders) {
      for (const name in ctx.upstreamHeaders) {
        const v = ctx.upstreamHeaders[name];
        if (v === null) delete headers[name];
        else headers[name] = v;
      }
    }
    const mc = ctx.modelConfig;
    const { settings } = ctx.config!;
    const up = settings.upstream;
    const hooks = ctx.hooks!;
    const responseTimeoutMs = mc?.responseTimeoutMs ?? up.responseTimeout;
    // A non-streamed answer's first byte comes with the last: held to the first-byte limit (60 s), a long generation
    // that works against the model server directly was a 504, which the SDKs retry, running it again.
    const target: ProxyTarget = {
      endpoints,
      release: pick?.release,
      fallback: pick?.fallback,
      path: upstreamUrl(ctx),
      headers,
      body,
      maxAttempts,
      firstByteTimeoutMs: ctx.stream ? (mc?.firstByteTimeoutMs ?? up.firstByteTimeout) : responseTimeoutMs,
      responseTimeoutMs,
      respond: hooks.respond ? (status) => hooks.respond!(ctx, status) : undefined,
      maxBodyBytes: settings.server.maxBodyBytes,
      commit: this.#analytics ? (end) => this.#commit(ctx, end) : undefined,
    };
    const upstream = ctx.tracer.startUpstreamSpan(ctx.span, ctx);
    ctx.tracer.injectTraceparent(upstream, headers);
    const result = await proxyRequest(ctx, res, this.#pools, target);
    ctx.tracer.endUpstreamSpan(upstream, ctx, result.error);
    // The picker's scrapes log why an endpoint it picks is down. One it did not pick, an HTTPRoute URL backend above
    // all (never scraped), is logged here, or its reason (an expired certificate) reached the client alone.
    if (result.unreachable && !pick) {
      this.#logger.warn({ requestId: ctx.id, endpoint: result.unreachable.endpoint.address, error: result.unreachable.reason }, 'a model server could not be reached');
    }
    if (result.error) throw result.error;
  }

  /** The answer for a refused request, in the configured fault format; records its code on the context. */
  errorResponse(ctx: RequestContext, err: unknown): ErrorResponse {
    let fault: GatewayError;
    if (err instanceof GatewayError) fault = err;
    else {
      this.#logger.error({ err, requestId: ctx.id }, 'unexpected error while handling a request');
      fault = gatewayError('TG_ERR_INTERNAL');
    }
    ctx.errorCode = fault.code;
    // A hang-up's answer is never sent (the client, or Envoy's stream, is gone): recorded with no status.
    ctx.status = fault.code === 'client_closed' ? undefined : fault.status;
    // Over ext_proc, a request refused before it was decided has none of its own yet.
    const hooks = ctx.hooks ?? this.hooks;
    // No model server's answer reached the client (none was tried, or the gateway answers instead of the one that
    // failed): what admission reserved goes back, and the headers say so. Not an answer Envoy took on unseen.
    if (ctx.attempts === 0 || (!ctx.usage && !ctx.answerUnseen)) hooks.refused?.(ctx);
    const response = fault.toResponse(hooks.faultFormat?.() ?? 'openai');
    for (const name in ctx.responseHeaders) response.headers[name] ??= ctx.responseHeaders[name];
    response.headers['x-request-id'] = ctx.id;
    if (fault.status === 413 || fault.status === 408) response.headers.connection = 'close';
    return response;
  }

  /** Resolves once the answer is sent: after its usage record is written (#commit), so a drain waits for it. */
  #send(ctx: RequestContext, res: ServerResponse, r: ErrorResponse | DirectResponse): Promise<void> {
    ctx.status = r.status;
    if (res.headersSent || res.destroyed) return Promise.resolve();
    const length = typeof r.body === 'string' ? Buffer.byteLength(r.body) : r.body.length;
    r.headers['content-length'] = String(length);
    r.headers['x-request-id'] = ctx.id;
    for (const name in ctx.responseHeaders) r.headers[name] ??= ctx.responseHeaders[name];
    // node:http throws on a status or header it cannot send, from here past every handler (ending the process): a
    // hook's answer carrying one loses that header, as a proxied answer does, or becomes a 500.
    dropUnsendableHeaders(r.headers);
    try {
      res.writeHead(r.status, r.headers);
    } catch (err) {
      return this.#send(ctx, res, this.errorResponse(ctx, err));
    }
    // The answer that went out (not one writeHead refused): before the usage record, which reads what it sets.
    accountOwnAnswer(ctx, r, length);
    return new Promise((resolve) =>
      this.#commit(ctx, () => {
        res.end(r.body);
        resolve();
      }),
    );
  }

  /** Writes the usage record, then sends the answer's last bytes (`end`): see AnalyticsPipeline on group commit. */
  #commit(ctx: RequestContext, end: () => void): void {
    if (!this.#analytics) return end();
    this.#record(this.#analytics, ctx, end);
  }

  #record(analytics: AnalyticsPipeline, ctx: RequestContext, then?: () => void): void {
    ctx.recorded = true;
    analytics.recordRequest(ctx, identityOf(ctx), then);
  }

  /** Accounting once a request is over, whichever way it came in: metrics, policies' response flow, access log. */
  finish(ctx: RequestContext): void {
    const config = ctx.config ?? this.config;
    if (this.#cutting && ctx.errorCode === 'client_closed') {
      ctx.errorCode = 'shutting_down';
      // The gateway cut it, not its client: a request whose answer had not begun is not charged as a hang-up is.
      if (ctx.bytesOut === 0 && ctx.usage?.estimated) ctx.usage = undefined;
    }
    this.storedResponses.track(ctx);
    if (ctx.metered) this.#metrics.finished(ctx, ctx.errorCode ?? (ctx.status !== undefined && ctx.status >= 400 ? String(ctx.status) : undefined));
    try {
      (ctx.hooks ?? this.hooks).complete?.(ctx);
    } catch (err) {
      this.#logger.error({ err, requestId: ctx.id }, 'completing a request failed');
    }
    if (config.settings.metrics.requests) this.#apimMetrics?.finished(ctx, ctx.model !== undefined && config.models.has(ctx.model));
    if (this.#analytics && !ctx.recorded && !ctx.recordedElsewhere) this.#record(this.#analytics, ctx);
    ctx.tracer.endRequestSpan(ctx.span, ctx);
    if (config.settings.logging.accessLog) {
      this.#logger.info(
        {
          requestId: ctx.id,
          method: ctx.method,
          // Chosen by the client (any anonymous one: the body is read before the key), so clipped as the usage record is.
          path: clipName(ctx.path),
          status: ctx.status,
          model: clipName(ctx.model),
          targetModel: clipName(ctx.targetModel),
          endpoint: ctx.endpoint?.address,
          attempts: ctx.attempts || undefined,
          errorCode: ctx.errorCode,
          ms: Math.round((performance.now() - ctx.start) * 100) / 100,
          ttftMs: ctx.ttftMs === undefined ? undefined : Math.round(ctx.ttftMs * 100) / 100,
          inputTokens: ctx.usage?.inputTokens,
          outputTokens: ctx.usage?.outputTokens,
          // Only on request (logging.logPrompts): prompts and answers are the users' data.
          ...(ctx.completion && { prompt: ctx.body ? clipText(promptOf(ctx.body)) : undefined, completion: ctx.completion.text }),
        },
        'request',
      );
    }
    this.#begun.end(ctx);
  }

  #done(ctx: RequestContext): void {
    this.finish(ctx);
    if (--this.#inflight === 0 && this.#draining) for (const w of this.#idleWaiters.splice(0)) w();
  }
}
