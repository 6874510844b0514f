// Request tracing with OpenTelemetry: a server span per request, child spans per stage, a GenAI client span for the
// model server with W3C traceparent propagation. When tracing is off, every call returns a constant and does nothing.
import { INVALID_SPAN_CONTEXT, isSpanContextValid, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import type * as Resources from '@opentelemetry/resources';
import type * as TraceSdk from '@opentelemetry/sdk-trace-node';
import type { IdGenerator, NodeTracerProvider, Sampler } from '@opentelemetry/sdk-trace-node';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_SERVICE_NAME,
  ATTR_URL_PATH,
} from '@opentelemetry/semantic-conventions';
import { clipName } from '../lib/clip-name.js';
import { TG_ERRORS } from '../gateway/errors.js';
import type { RequestContext } from '../gateway/context.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import type { Operation } from '../gateway/openai-request.js';
import type { TracingSettings } from './tracing-settings.js';
import { ThreadedSpanExporter } from './threaded-span-exporter.js';
import { formatTraceparent, parseTraceparent } from './tracing-traceparent.js';
import { lazyRequire } from '../lib/lazy-require.js';

/** OpenTelemetry's SDK loads with the first tracer (tracing configured), not with every gateway. */
const loadSdk = lazyRequire<typeof TraceSdk>('@opentelemetry/sdk-trace-node');
const loadResources = lazyRequire<typeof Resources>('@opentelemetry/resources');

export type { Span };

/** The span API the data plane calls. Spans are passed explicitly (no async-context lookup on the hot path). */
export interface RequestTracer {
  readonly enabled: boolean;
  /** Whether each request policy gets a span of its own (tracing.policySpans). */
  readonly policySpans: boolean;
  /** The server span, continuing the caller's traceparent when it sent one. */
  startRequestSpan(ctx: RequestContext): Span;
  /** Names it `POST /v1/chat/completions`, sets the HTTP and GenAI attributes from ctx, and ends it. */
  endRequestSpan(span: Span, ctx: RequestContext): void;
  /** A stage of the request (`policies`, `pick`, ...). */
  startChild(parent: Span, name: string): Span;
  endChild(span: Span, err?: unknown): void;
  /** The GenAI client span for the model server call, named `chat <target model>`. */
  startUpstreamSpan(parent: Span, ctx: RequestContext): Span;
  endUpstreamSpan(span: Span, ctx: RequestContext, err?: unknown): void;
  /** Sets traceparent (and tracestate) on the headers sent upstream, so the model server's spans join the trace. */
  injectTraceparent(span: Span, headers: Record<string, string | string[]>): void;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** The span every call returns when tracing is off: one shared non-recording span, so nothing is allocated. */
export const NOOP_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

const noopSpan = (): Span => NOOP_SPAN;
const nothing = (): void => {};
const settled = (): Promise<void> => Promise.resolve();

export const NOOP_TRACER: RequestTracer = Object.freeze({
  enabled: false,
  policySpans: false,
  startRequestSpan: noopSpan,
  endRequestSpan: nothing,
  startChild: noopSpan,
  endChild: nothing,
  startUpstreamSpan: noopSpan,
  endUpstreamSpan: nothing,
  injectTraceparent: nothing,
  forceFlush: settled,
  shutdown: settled,
});

/** GenAI semantic conventions' gen_ai.operation.name (still "development" status, so not imported from the incubating entry). */
const GEN_AI_OPERATION: Record<Operation, string> = {
  'chat.completions': 'chat',
  completions: 'text_completion',
  embeddings: 'embeddings',
  responses: 'chat',
};

function hostPort(value: string | undefined): { address?: string; port?: number } {
  const m = value === undefined ? null : /^(\[[^\]]*\]|[^:]+)(?::(\d+))?$/.exec(value);
  return m ? { address: m[1], port: m[2] === undefined ? undefined : Number(m[2]) } : {};
}

/** A base URL (`http://collector:4318`) gets the OTLP traces path; a URL with a path is used as it is. */
function tracesUrl(endpoint: string): string {
  const url = new URL(endpoint);
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/v1/traces';
  return url.href;
}

function genAiAttributes(ctx: RequestContext, into: Attributes): Attributes {
  if (ctx.operation) into['gen_ai.operation.name'] = GEN_AI_OPERATION[ctx.operation];
  if (ctx.targetModel !== undefined) into['gen_ai.response.model'] = clipName(ctx.targetModel);
  if (ctx.usage) {
    into['gen_ai.usage.input_tokens'] = ctx.usage.inputTokens;
    into['gen_ai.usage.output_tokens'] = ctx.usage.outputTokens;
  }
  return into;
}

function fail(span: Span, errorType: string, message?: string): void {
  span.setAttribute(ATTR_ERROR_TYPE, errorType);
  span.setStatus({ code: SpanStatusCode.ERROR, message });
}

/**
 * For a caller's sampled traceparent: followed for `share` of requests (tracing.clientSampling), the others sampled at
 * `ratio`. Drawn at random, not from the trace id as TraceIdRatioBasedSampler does: the caller chose that id, and
 * could choose one that always passes. Either way the span keeps the caller's trace id, so logs still correlate.
 */
function callerSampler(share: number, ratio: number): Sampler {
  const { SamplingDecision } = loadSdk();
  return {
    shouldSample: () => ({ decision: Math.random() < share || Math.random() < ratio ? SamplingDecision.RECORD_AND_SAMPLED : SamplingDecision.NOT_RECORD }),
    toString: () => `CallerSampled{share=${share}, ratio=${ratio}}`,
  };
}

/** The answer began (its status sent) and then ended on one of tollgate's own 5xx faults (upstream_error, ...). */
function cutByServerFault(ctx: RequestContext): boolean {
  const code = ctx.errorCode;
  return code !== undefined && ctx.status !== undefined && ctx.status < 400 && SERVER_FAULT_CODES.has(code);
}

const SERVER_FAULT_CODES = new Set<string>(Object.values(TG_ERRORS).filter((e) => e.status >= 500).map((e) => e.code));

function errorType(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : err instanceof Error ? err.name : 'error';
}

class OtelRequestTracer implements RequestTracer {
  readonly enabled = true;
  readonly policySpans: boolean;
  readonly #provider: NodeTracerProvider;
  readonly #tracer: Tracer;
  readonly #logger: Logger;
  readonly #exporter: ThreadedSpanExporter;
  readonly #rootRatio: number;
  readonly #ids: IdGenerator;

  constructor(settings: TracingSettings, endpoint: string, logger: Logger) {
    this.#logger = logger;
    this.policySpans = settings.policySpans;
    // OTLP encoding and sending happen on a thread of their own (ThreadedSpanExporter wraps the OTLP/HTTP exporter).
    const exporter = new ThreadedSpanExporter(tracesUrl(endpoint), settings.headers);
    this.#exporter = exporter;
    const { AlwaysOnSampler, BatchSpanProcessor, NodeTracerProvider, ParentBasedSampler, RandomIdGenerator } = loadSdk();
    this.#rootRatio = settings.sampleRatio;
    this.#ids = new RandomIdGenerator();
    // Not registered globally: two gateways in one process (tests) keep their own providers.
    this.#provider = new NodeTracerProvider({
      resource: loadResources().resourceFromAttributes({ [ATTR_SERVICE_NAME]: settings.serviceName }),
      sampler: new ParentBasedSampler({
        // New traces are drawn at sampleRatio in startRequestSpan, before the SDK sees them: those it sees are sampled.
        root: new AlwaysOnSampler(),
        remoteParentSampled: callerSampler(settings.clientSampling, settings.sampleRatio),
      }),
      spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: settings.exportInterval })],
    });
    this.#tracer = this.#provider.getTracer('tollgate');
  }

  startRequestSpan(ctx: RequestContext): Span {
    const headers = ctx.headers;
    const remote = parseTraceparent(headers.traceparent, headers.tracestate);
    // A new trace the ratio leaves out (with sampling, most requests) gets only its ids, for the traceparent sent
    // upstream with the sampled flag off: the SDK's sampler chain and contexts cost it more than it does.
    if (remote === undefined && Math.random() >= this.#rootRatio) {
      return trace.wrapSpanContext({ traceId: this.#ids.generateTraceId(), spanId: this.#ids.generateSpanId(), traceFlags: TraceFlags.NONE });
    }
    const parent = remote ? trace.setSpanContext(ROOT_CONTEXT, remote) : ROOT_CONTEXT;
    const span = this.#tracer.startSpan(ctx.method, { kind: SpanKind.SERVER }, parent);
    // Attributes only for a recorded span: with sampling, most requests are not, and they should cost next to nothing.
    if (!span.isRecording()) return span;
    const host = hostPort(headers.host);
    const attributes: Attributes = { [ATTR_HTTP_REQUEST_METHOD]: ctx.method, [ATTR_URL_PATH]: ctx.path };
    if (host.address !== undefined) attributes[ATTR_SERVER_ADDRESS] = host.address;
    if (host.port !== undefined) attributes[ATTR_SERVER_PORT] = host.port;
    return span.setAttributes(attributes);
  }

  endRequestSpan(span: Span, ctx: RequestContext): void {
    if (!span.isRecording()) return;
    // Only the OpenAI paths are routes; any other path would make span names unbounded.
    if (ctx.operation) {
      span.updateName(`${ctx.method} ${ctx.path}`);
      span.setAttribute(ATTR_HTTP_ROUTE, ctx.path);
    }
    const attributes = genAiAttributes(ctx, { 'tollgate.request_id': ctx.id, 'tollgate.priority': ctx.priority });
    if (ctx.model !== undefined) attributes['gen_ai.request.model'] = clipName(ctx.model);
    if (ctx.status !== undefined) attributes[ATTR_HTTP_RESPONSE_STATUS_CODE] = ctx.status;
    span.setAttributes(attributes);
    // HTTP server semantics: 4xx is the client's doing, only 5xx (or no answer) marks the server span as failed; so
    // does an answer begun and then cut by a server-side fault (the model server died or timed out mid-stream).
    if (ctx.status === undefined || ctx.status >= 500 || cutByServerFault(ctx)) fail(span, ctx.errorCode ?? String(ctx.status ?? 'no_response'));
    span.end();
  }

  startChild(parent: Span, name: string): Span {
    // An unsampled trace records nothing below its root: the parent stands in for its children.
    if (!parent.isRecording()) return parent;
    return this.#tracer.startSpan(name, { kind: SpanKind.INTERNAL }, trace.setSpan(ROOT_CONTEXT, parent));
  }

  endChild(span: Span, err?: unknown): void {
    if (!span.isRecording()) return;
    if (err !== undefined) fail(span, errorType(err), err instanceof Error ? err.message : undefined);
    span.end();
  }

  startUpstreamSpan(parent: Span, ctx: RequestContext): Span {
    if (!parent.isRecording()) return parent;
    const operation = ctx.operation ? GEN_AI_OPERATION[ctx.operation] : undefined;
    const model = clipName(ctx.targetModel ?? ctx.model);
    const attributes: Attributes = { [ATTR_HTTP_REQUEST_METHOD]: ctx.method };
    if (operation) attributes['gen_ai.operation.name'] = operation;
    if (model !== undefined) attributes['gen_ai.request.model'] = model;
    const name = operation && model !== undefined ? `${operation} ${model}` : ctx.method;
    return this.#tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, trace.setSpan(ROOT_CONTEXT, parent));
  }

  endUpstreamSpan(span: Span, ctx: RequestContext, err?: unknown): void {
    if (!span.isRecording()) return;
    const endpoint = hostPort(ctx.endpoint?.address);
    const attributes = genAiAttributes(ctx, { 'tollgate.upstream.attempts': ctx.attempts });
    if (endpoint.address !== undefined) attributes[ATTR_SERVER_ADDRESS] = endpoint.address;
    if (endpoint.port !== undefined) attributes[ATTR_SERVER_PORT] = endpoint.port;
    if (ctx.status !== undefined) attributes[ATTR_HTTP_RESPONSE_STATUS_CODE] = ctx.status;
    span.setAttributes(attributes);
    if (err !== undefined) fail(span, errorType(err), err instanceof Error ? err.message : undefined);
    else if (ctx.status !== undefined && ctx.status >= 400) fail(span, String(ctx.status));
    else if (cutByServerFault(ctx)) fail(span, ctx.errorCode!);
    span.end();
  }

  injectTraceparent(span: Span, headers: Record<string, string | string[]>): void {
    const sc = span.spanContext();
    if (!isSpanContextValid(sc)) return;
    headers.traceparent = formatTraceparent(sc);
    if (sc.traceState) headers.tracestate = sc.traceState.serialize();
  }

  forceFlush(): Promise<void> {
    return this.#provider.forceFlush();
  }

  /** Exports what is left; a collector that cannot take it costs those spans (logged), never the gateway's stop. */
  shutdown(): Promise<void> {
    return this.#provider.shutdown().catch((err: unknown) => {
      this.#logger.warn({ err }, 'the last spans could not be exported');
      // The provider stops at the failed export without shutting its exporter down: its thread would stay.
      return this.#exporter.shutdown();
    });
  }
}

/**
 * The tracer for these settings: OpenTelemetry exporting OTLP/HTTP JSON when `endpoint` is set, NOOP_TRACER otherwise.
 * @example
 * const tracer = createRequestTracer(settings.tracing);
 * ctx.span = tracer.startRequestSpan(ctx);
 * const up = tracer.startUpstreamSpan(ctx.span, ctx); tracer.injectTraceparent(up, headers);
 */
export function createRequestTracer(settings: TracingSettings, logger: Logger = silentLogger): RequestTracer {
  return settings.endpoint === undefined ? NOOP_TRACER : new OtelRequestTracer(settings, settings.endpoint, logger);
}
