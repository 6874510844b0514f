// The data plane's request handler: parse → credentials → model lookup → policies → pick → proxy → account,
// in the order DESIGN.md fixes. The configuration is swapped atomically on reload; in-flight requests keep theirs.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RuntimeConfig } from '../config/runtime-config.js';
import type { Logger } from '../lib/logger.js';
import { serializeMessages } from '../lib/tokenizer.js';
import type { EndpointPicker, Pick } from '../scheduler/types.js';
import type { RequestMetrics } from '../telemetry/request-metrics.js';
import { readBody } from './body.js';
import type { RequestContext } from './context.js';
import { GatewayError, gatewayError } from './errors.js';
import type { GatewayHooks } from './hooks.js';
import { modelsListBody } from './models-list.js';
import { OPERATION_PATHS, parseOpenAIBody, type OpenAIBody } from './openai-request.js';
import { proxyRequest, type ProxyTarget } from './proxy.js';
import { FAIRNESS_HEADER, matchRoute, resolveModel } from './resolve-model.js';
import type { UpstreamPools } from './upstream-pools.js';

/** Client headers that never go upstream: hop-by-hop, the client's credentials, tollgate's own routing headers. */
const NOT_FORWARDED = new Set([
  'host', 'connection', 'keep-alive', 'transfer-encoding', 'content-length', 'proxy-connection', 'te', 'upgrade', 'trailer',
  'authorization', 'x-api-key', 'x-gateway-inference-objective', 'x-gateway-inference-fairness-id', 'expect',
]);
const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

export interface DataPlaneDeps {
  config: RuntimeConfig;
  picker: EndpointPicker;
  pools: UpstreamPools;
  metrics: RequestMetrics;
  logger: Logger;
  hooks?: GatewayHooks;
}

function promptOf(body: OpenAIBody): string {
  if (Array.isArray(body.messages)) return serializeMessages(body.messages);
  const p = body.prompt ?? body.input;
  return typeof p === 'string' ? p : p === undefined ? '' : JSON.stringify(p);
}

export class DataPlane {
  config: RuntimeConfig;
  hooks: GatewayHooks;
  readonly #picker: EndpointPicker;
  readonly #pools: UpstreamPools;
  readonly #metrics: RequestMetrics;
  readonly #logger: Logger;
  readonly #created = Math.floor(Date.now() / 1000);
  #inflight = 0;
  #draining = false;
  #idleWaiters: (() => void)[] = [];

  constructor(deps: DataPlaneDeps) {
    this.config = deps.config;
    this.#picker = deps.picker;
    this.#pools = deps.pools;
    this.#metrics = deps.metrics;
    this.#logger = deps.logger;
    this.hooks = deps.hooks ?? {};
  }

  get inflight(): number {
    return this.#inflight;
  }

  /** Stops taking new requests (503) and resolves once in-flight ones have finished. */
  drain(): Promise<void> {
    this.#draining = true;
    if (this.#inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  handle = (req: IncomingMessage, res: ServerResponse): void => {
    const incomingId = req.headers['x-request-id'];
    const ctx: RequestContext = {
      id: typeof incomingId === 'string' && REQUEST_ID.test(incomingId) ? incomingId : randomUUID(),
      start: performance.now(),
      req,
      res,
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      path: '',
      priority: 0,
      fairnessId: '',
      stream: false,
      bodyChanged: false,
      responseHeaders: {},
      attempts: 0,
      bytesIn: 0,
      bytesOut: 0,
    };
    const q = ctx.url.indexOf('?');
    ctx.path = q === -1 ? ctx.url : ctx.url.slice(0, q);
    this.#inflight++;
    this.#run(ctx).then(
      () => this.#done(ctx),
      (err) => {
        this.#fail(ctx, err);
        this.#done(ctx);
      },
    );
  };

  async #run(ctx: RequestContext): Promise<void> {
    if (this.#draining) throw gatewayError('TG_ERR_SHUTTING_DOWN');
    const config = this.config;
    const operation = OPERATION_PATHS[ctx.path];
    if (ctx.method === 'GET' && ctx.path === '/v1/models') {
      await this.hooks.authenticate?.(ctx);
      this.#send(ctx, 200, modelsListBody(config, this.#created));
      return;
    }
    ctx.backend = config.routes.length > 0 ? matchRoute(config, ctx) : undefined;
    if (!operation && !ctx.backend) throw gatewayError('TG_ERR_ROUTE_NOT_FOUND', `No route for ${ctx.method} ${ctx.path}`);
    if (operation && ctx.method !== 'POST') throw gatewayError('TG_ERR_METHOD_NOT_ALLOWED', `${ctx.path} accepts POST only`);

    const raw = await readBody(ctx.req, config.settings.server.maxBodyBytes, config.settings.server.bodyTimeout);
    ctx.rawBody = raw;
    ctx.bytesIn = raw.length;
    if (operation) {
      ctx.operation = operation;
      ctx.body = parseOpenAIBody(raw, operation);
      ctx.model = ctx.body.model;
      ctx.stream = ctx.body.stream === true;
    }
    await this.hooks.authenticate?.(ctx);

    if (ctx.backend?.kind === 'url') {
      await this.hooks.admit?.(ctx);
      await this.#forward(ctx, { endpoints: [{ url: ctx.backend.url, address: new URL(ctx.backend.url).host }] }, 1);
      return;
    }
    resolveModel(config, ctx);
    this.#metrics.started(ctx.model!);
    const fairness = ctx.req.headers[FAIRNESS_HEADER];
    if (ctx.fairnessId === '' && typeof fairness === 'string') ctx.fairnessId = fairness;
    await this.hooks.admit?.(ctx);

    const pick = await this.#picker.pick({
      pool: ctx.modelConfig!.pool,
      targetModel: ctx.targetModel!,
      prompt: promptOf(ctx.body!),
      priority: ctx.priority,
      fairnessId: ctx.fairnessId,
    });
    await this.#forward(ctx, pick, 1 + config.settings.upstream.maxRetries);
  }

  async #forward(ctx: RequestContext, pick: Pick | { endpoints: Pick['endpoints']; release?: undefined }, maxAttempts: number): Promise<void> {
    if (pick.endpoints.length === 0) throw gatewayError('TG_ERR_NO_ENDPOINTS');
    const headers: Record<string, string | string[]> = {};
    const incoming = ctx.req.headers;
    for (const name in incoming) if (!NOT_FORWARDED.has(name)) headers[name] = incoming[name]!;
    headers['x-request-id'] = ctx.id;
    let body: Buffer | null = ctx.rawBody ?? null;
    if (ctx.bodyChanged && ctx.body) {
      ctx.body.model = ctx.targetModel!;
      body = Buffer.from(JSON.stringify(ctx.body));
    }
    const mc = ctx.modelConfig;
    const up = this.config.settings.upstream;
    const target: ProxyTarget = {
      endpoints: pick.endpoints,
      release: pick.release,
      path: ctx.url,
      headers,
      body,
      maxAttempts,
      firstByteTimeoutMs: mc?.firstByteTimeoutMs ?? up.firstByteTimeout,
      responseTimeoutMs: mc?.responseTimeoutMs ?? up.responseTimeout,
    };
    const result = await proxyRequest(ctx, this.#pools, target);
    if (result.error) throw result.error;
  }

  #send(ctx: RequestContext, status: number, body: string, extraHeaders?: Record<string, string>): void {
    ctx.status = status;
    if (ctx.res.headersSent || ctx.res.destroyed) return;
    ctx.res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'x-request-id': ctx.id,
      ...ctx.responseHeaders,
      ...extraHeaders,
    });
    ctx.res.end(body);
  }

  #fail(ctx: RequestContext, err: unknown): void {
    let fault: GatewayError;
    if (err instanceof GatewayError) fault = err;
    else {
      this.#logger.error({ err, requestId: ctx.id }, 'unexpected error while handling a request');
      fault = gatewayError('TG_ERR_INTERNAL');
    }
    ctx.errorCode = fault.code;
    const response = fault.toResponse(this.hooks.faultFormat?.() ?? 'openai');
    if (fault.status === 413 || fault.status === 408) response.headers.connection = 'close';
    this.#send(ctx, response.status, response.body, response.headers);
  }

  #done(ctx: RequestContext): void {
    if (ctx.model !== undefined && ctx.modelConfig) this.#metrics.finished(ctx, ctx.errorCode ?? (ctx.status !== undefined && ctx.status >= 400 ? String(ctx.status) : undefined));
    try {
      this.hooks.complete?.(ctx);
    } catch (err) {
      this.#logger.error({ err, requestId: ctx.id }, 'completing a request failed');
    }
    if (this.config.settings.logging.accessLog) {
      this.#logger.info(
        {
          requestId: ctx.id,
          method: ctx.method,
          path: ctx.path,
          status: ctx.status,
          model: ctx.model,
          targetModel: ctx.targetModel,
          endpoint: ctx.endpoint?.address,
          attempts: ctx.attempts || undefined,
          errorCode: ctx.errorCode,
          ms: Math.round((performance.now() - ctx.start) * 100) / 100,
          ttftMs: ctx.ttftMs === undefined ? undefined : Math.round(ctx.ttftMs * 100) / 100,
          inputTokens: ctx.usage?.inputTokens,
          outputTokens: ctx.usage?.outputTokens,
        },
        'request',
      );
    }
    if (--this.#inflight === 0 && this.#draining) for (const w of this.#idleWaiters.splice(0)) w();
  }
}
