// One ext_proc stream: an HTTP request and its answer as Envoy drives them, through the data plane's own stages.
// Messages are answered strictly in order; anything Envoy would never send in this order ends the stream with
// a gRPC error status. However the stream ends, the request is accounted for once and its pick released.
import type { IncomingHttpHeaders } from 'node:http';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { loadGrpc } from './grpc.js';
import { callerRecords, withIdentity } from './caller-records.js';
import type { RequestContext } from '../gateway/context.js';
import { identityOf, newContext, type DataPlane } from '../gateway/data-plane.js';
import { gatewayError, type ErrorResponse } from '../gateway/errors.js';
import type { DirectResponse } from '../gateway/hooks.js';
import { usageAtEnd } from '../gateway/estimated-usage.js';
import { jsonText } from '../lib/json-text.js';
import type { Logger } from '../lib/logger.js';
import { readHeaderMap } from './headers.js';
import { immediateResponse } from './immediate.js';
import type { BodyMutation, HttpBody, PbStruct, ProcessingRequest, ProcessingResponse } from './messages.js';
import { malformed, outOfOrder, ProtocolError } from './protocol-error.js';
import { DESTINATION_NAMESPACE, SERVED_KEY, requestAnswer, requestHeadersAnswer, type Roles } from './request-answer.js';
import { clientIp, subsetHint } from './request-metadata.js';
import { decideRequest, type Outcome } from './request-pipeline.js';
import { ResponsePhase } from './response-phase.js';
import { metadataValue } from './struct.js';

type State = 'request-headers' | 'request-body' | 'deciding' | 'forwarded' | 'response-body' | 'response-done' | 'replied';
type Answer = ProcessingResponse | undefined;
type RequestPart = 'request_headers' | 'request_body' | 'request_trailers';

const EMPTY = Buffer.alloc(0);
/** How long a half-close waits for a cancel that may follow it (#onEnd); an Envoy that ended normally waits this long for the status. */
const END_GRACE_MS = 25;
const CLEAR: BodyMutation = { clear_body: true };

export interface StreamSettings {
  dataPlane: DataPlane;
  roles: Roles;
  /** Envoy sends request bodies BUFFERED_PARTIAL: a body message without end_of_stream was cut at its buffer limit. */
  truncatedBodies: boolean;
  /** Envoy sends request bodies BUFFERED: a body message without end_of_stream is the whole body, trailers follow. */
  wholeBodies: boolean;
  /** The same for answers (response_body_mode BUFFERED). */
  wholeResponses: boolean;
  /**
   * Envoy sends every answer's body (told response_body_mode BUFFERED or STREAMED): a stream that ends before the
   * body's end was cut. Untold, it may send none (NONE, or every response event skipped).
   */
  answerBodies: boolean;
  /** How much longer than the model's response timeout Envoy may leave the stream silent. */
  idleMarginMs: number;
  /** For the models list's `created`. */
  created: number;
  logger: Logger;
  /** Told when a request went upstream without its body ever reaching tollgate (Envoy's request_body_mode NONE). */
  unjudged: (ctx: RequestContext) => void;
}

/**
 * x-gateway-destination-endpoint-served in the envoy.lb metadata Envoy attaches to every response event: read from
 * the first one, whichever it is (response_header_mode SKIP sends no headers).
 */
function servedOf(msg: ProcessingRequest): unknown {
  return metadataValue(msg.metadata_context?.filter_metadata, DESTINATION_NAMESPACE, SERVED_KEY);
}

/** How a response tollgate sees no headers of (response_header_mode SKIP) is read: an SSE stream starts like one. */
const SSE_START = /^\s*(data|event|id|retry)?:/;

export class ProcessStream {
  readonly #call: ServerDuplexStream<ProcessingRequest, ProcessingResponse>;
  readonly #s: StreamSettings;
  readonly #onClosed: () => void;
  #state: State = 'request-headers';
  #ctx: RequestContext | undefined;
  /** Envoy sent header values as raw_value bytes: answers use the same field. */
  #raw = true;
  #chunks: Buffer[] = [];
  #bytes = 0;
  /** Body chunks answered with clear_body, so the decision must hand back the whole body. */
  #heldChunks = 0;
  #bodyEnded = false;
  #outcome: Exclude<Outcome, { kind: 'reply' }> | undefined;
  /** Index of the endpoint Envoy reported as the one that served (x-gateway-destination-endpoint-served). */
  #served = 0;
  #response: ResponsePhase | undefined;
  /** A piece of the answer's body came: Envoy sends this answer's body. */
  #answerBody = false;
  #busy = false;
  #pending: ProcessingRequest[] = [];
  #halfClosed = false;
  #closed = false;
  #callEnded = false;
  #completed = false;
  /** Called if the stream is abandoned: a request waiting in the flow-control queue leaves it. */
  #goneWatchers: (() => void)[] = [];
  #abandoned = false;
  /** Cancels a stream Envoy leaves silent longer than #idleLimit(); every message from Envoy starts it again. */
  #idleTimer: NodeJS.Timeout;
  #idleMs: number;
  #messages = 0;
  /** The caller is a tollgate that records the request (caller-records.ts). */
  #callerRecords = false;
  readonly #onGone = (gone: () => void): void => {
    if (this.#abandoned) gone();
    else if (!this.#closed) this.#goneWatchers.push(gone);
  };

  constructor(call: ServerDuplexStream<ProcessingRequest, ProcessingResponse>, settings: StreamSettings, onClosed: () => void) {
    this.#call = call;
    this.#s = settings;
    this.#onClosed = onClosed;
    this.#idleMs = this.#idleLimit();
    this.#idleTimer = setTimeout(this.#onIdle, this.#idleMs).unref();
    call.on('data', this.#onData);
    call.on('end', this.#onEnd);
    call.on('cancelled', this.#onAbort);
    call.on('error', this.#onAbort);
  }

  /** Ends the stream at once (server shutdown): the request counts as abandoned. */
  cancel(): void {
    this.#fail(new ProtocolError(loadGrpc().status.UNAVAILABLE, 'the ext_proc server is shutting down'));
  }

  #onData = (msg: ProcessingRequest): void => {
    if (this.#closed) return;
    this.#messages++;
    this.#awaitEnvoy();
    if (this.#busy) this.#pending.push(msg);
    else this.#process(msg);
  };

  /**
   * A reset ends the readable side too, and 'cancelled' follows once the HTTP/2 stream has closed: one to four loop
   * turns later in tests, with I/O between them, so no count of turns tells the two apart. A half-close is taken for
   * one alone (Envoy's opt-in graceful close) when no cancel came within END_GRACE_MS and the I/O polled after it:
   * the answers still owed then go out, where a reset abandons a decision in progress (#abandonedAtEnd).
   */
  #onEnd = (): void => {
    setTimeout(
      () =>
        setImmediate(() => {
          if (this.#call.cancelled) return this.#onAbort();
          this.#halfClosed = true;
          if (!this.#busy) this.#endCall();
        }),
      END_GRACE_MS,
    );
  };

  /**
   * A live stream is never this quiet: the model's answer has its response timeout, and Envoy sends on as it comes.
   * Silence this long is an Envoy gone (or lost to tollgate) whose connection still looks open, and the stream's
   * pick would stay held, and its request unaccounted, for as long as that lasts.
   */
  #idleLimit(): number {
    const config = this.#ctx?.config ?? this.#s.dataPlane.config;
    return (this.#ctx?.modelConfig?.responseTimeoutMs ?? config.settings.upstream.responseTimeout) + this.#s.idleMarginMs;
  }

  /** Envoy's turn to send: the idle limit runs from now (the model, once known, sets it). */
  #awaitEnvoy(): void {
    if (this.#closed) return;
    const ms = this.#idleLimit();
    if (ms === this.#idleMs) {
      this.#idleTimer.refresh();
      return;
    }
    clearTimeout(this.#idleTimer);
    this.#idleMs = ms;
    this.#idleTimer = setTimeout(this.#onIdle, ms).unref();
  }

  #onIdle = (): void => {
    // tollgate's own work in progress (a decision waiting in the queue): Envoy is waiting on it, not the other way round.
    if (this.#busy) return this.#awaitEnvoy();
    // Judged after the I/O that arrived meanwhile is read (with-timeout.ts): a stalled event loop is not Envoy's silence.
    const heard = this.#messages;
    setImmediate(() => {
      if (this.#messages !== heard || this.#busy) return;
      this.#fail(new ProtocolError(loadGrpc().status.DEADLINE_EXCEEDED, `Envoy sent nothing on this stream for ${this.#idleMs} ms`));
    });
  };

  /** Cancelled by Envoy (or failed in transport): nothing more can be written. */
  #onAbort = (): void => {
    this.#callEnded = true;
    this.#close(this.#abandonedAtEnd());
  };

  /**
   * Whether the stream's end, however Envoy sent it, leaves the exchange abandoned (an answer that went on unseen is
   * marked so). Envoy ends every stream alike:
   * END_STREAM then RST_STREAM(CANCEL) (client_impl.cc close(); a half-close alone only with the opt-in
   * ext_proc_graceful_grpc_close), once it expects no more messages and when its HTTP stream is destroyed, a client's
   * hang-up or a normal end. So before the answer's end only Envoy's processing mode tells them apart: an answer whose
   * body Envoy sends (told so, or a piece came) was cut; otherwise it went on unseen (response_body_mode NONE, or every
   * response event skipped), as it would at its end, and what it may have cost stands.
   */
  #abandonedAtEnd(): boolean {
    switch (this.#state) {
      case 'forwarded':
        if (this.#s.answerBodies) return true;
        this.#ctx!.answerUnseen = true;
        return false;
      case 'response-body':
        return this.#s.answerBodies || this.#answerBody;
      case 'response-done':
      case 'replied':
        return false;
      default:
        // The request's own part: Envoy owes the rest of the body, or awaits the decision.
        return true;
    }
  }

  #process(msg: ProcessingRequest): void {
    let answer: Answer | Promise<Answer>;
    try {
      answer = this.#dispatch(msg);
    } catch (err) {
      this.#fail(err);
      return;
    }
    if (!(answer instanceof Promise)) {
      this.#write(answer);
      return;
    }
    this.#busy = true;
    answer.then(
      (a) => {
        this.#busy = false;
        this.#write(a);
        this.#awaitEnvoy();
        while (!this.#busy && !this.#closed && this.#pending.length > 0) this.#process(this.#pending.shift()!);
        if (!this.#busy && this.#halfClosed) this.#endCall();
      },
      (err: unknown) => {
        this.#busy = false;
        this.#fail(err);
      },
    );
  }

  #dispatch(msg: ProcessingRequest): Answer | Promise<Answer> {
    const answer = this.#route(msg);
    // In observability mode Envoy reads no answers.
    if (msg.observability_mode !== true) return answer;
    return answer instanceof Promise ? answer.then(() => undefined) : undefined;
  }

  #route(msg: ProcessingRequest): Answer | Promise<Answer> {
    switch (msg.request) {
      case 'request_headers':
        return this.#requestHeaders(msg);
      case 'request_body':
        return this.#requestBody(msg.request_body!);
      case 'request_trailers':
        return this.#requestTrailers();
      case 'response_headers':
        return this.#responseHeaders(msg);
      case 'response_body':
        return this.#responseBody(msg);
      case 'response_trailers':
        return this.#responseTrailers(msg);
      default:
        throw malformed('the ProcessingRequest carries no request this server knows (a missing or unknown oneof member)');
    }
  }

  #requestHeaders(msg: ProcessingRequest): Answer | Promise<Answer> {
    if (this.#state !== 'request-headers') throw outOfOrder('request_headers arrived twice in one stream');
    const h = msg.request_headers!;
    const read = readHeaderMap(h.headers);
    const { method, path } = read.pseudo;
    if (!method || !path) throw malformed('request_headers without :method and :path');
    this.#raw = read.raw;
    const ctx = (this.#ctx = newContext(method, path, read.headers, clientIp(read.headers)));
    // As the data plane's handler: the request keeps its configuration, hooks and tracer whatever a reload installs
    // before its answer is over (finish ends it). Its span continues the traceparent among the request headers. Envoy
    // makes the upstream call, so there is no client span, and the traceparent it forwards is left to it: no header
    // mutation.
    this.#s.dataPlane.begin(ctx);
    const { pdp, epp } = this.#s.roles;
    if (!pdp) ctx.stages = 'picker';
    else if (!epp) ctx.stages = 'policies';
    // One record per request: a picker alone knows no caller and bills nothing (the policy decision point in its chain
    // records the request), and a calling tollgate records it itself.
    this.#callerRecords = callerRecords(this.#call.metadata);
    if (!pdp || this.#callerRecords) ctx.recordedElsewhere = true;
    if (epp) ctx.subset = subsetHint(msg);
    if (h.end_of_stream) {
      this.#bodyEnded = true;
      return this.#decide('request_headers', () => Promise.resolve(EMPTY));
    }
    this.#state = 'request-body';
    // Unless Envoy holds the headers for the body (BUFFERED, BUFFERED_PARTIAL), they go upstream with this answer.
    const headersGoNow = !this.#s.wholeBodies && !this.#s.truncatedBodies;
    return { request_headers: { response: requestHeadersAnswer(ctx, this.#s.roles, this.#raw, headersGoNow) } };
  }

  #requestBody(b: HttpBody): Answer | Promise<Answer> {
    if (this.#state === 'request-headers') throw outOfOrder('request_body before request_headers');
    if (this.#state !== 'request-body') {
      // The rest of a body that was refused (or judged) before its end passes unexamined.
      if (this.#state === 'replied' || !this.#bodyEnded) return { request_body: {} };
      throw outOfOrder('request_body after the end of the request body');
    }
    const chunk = b.body ?? EMPTY;
    const max = this.#ctx!.config!.settings.server.maxBodyBytes;
    // BUFFERED: Envoy sends the body once, without end_of_stream when the request has trailers (ext_proc.cc onTrailers).
    const ended = b.end_of_stream === true || this.#s.wholeBodies;
    if (ended) this.#bodyEnded = true;
    this.#bytes += chunk.length;
    if (this.#bytes > max) {
      this.#chunks = [];
      return this.#decide('request_body', () => Promise.reject(gatewayError('TG_ERR_BODY_TOO_LARGE', `The request body is larger than the limit of ${max} bytes`)));
    }
    if (chunk.length > 0) this.#chunks.push(chunk);
    if (ended) return this.#decide('request_body', () => Promise.resolve(this.#chunks.length === 1 ? this.#chunks[0] : Buffer.concat(this.#chunks, this.#bytes)));
    if (this.#s.truncatedBodies) return this.#partialBody();
    // A streamed chunk: held back (cleared) until the whole body is known and judged.
    this.#heldChunks++;
    return { request_body: { response: { body_mutation: CLEAR } } };
  }

  /**
   * A BUFFERED_PARTIAL body without end_of_stream: Envoy sends one when its buffer filled (the rest then passes on
   * unexamined) and when trailers follow a body that fit (ext_proc.cc onTrailers), sending those only once this is
   * answered. Only a whole body is complete JSON (a cut object never parses): judged as one, anything else 413.
   */
  #partialBody(): Promise<Answer> {
    const body = Buffer.concat(this.#chunks, this.#bytes);
    if (!isJson(body)) return this.#decide('request_body', () => Promise.reject(gatewayError('TG_ERR_BODY_TOO_LARGE', "The request body is larger than Envoy's ext_proc buffer")));
    this.#bodyEnded = true;
    return this.#decide('request_body', () => Promise.resolve(body));
  }

  #requestTrailers(): Answer | Promise<Answer> {
    if (this.#state === 'request-headers') throw outOfOrder('request_trailers before request_headers');
    if (this.#state !== 'request-body') return { request_trailers: {} };
    this.#bodyEnded = true;
    if (this.#heldChunks > 0) {
      // The body was held back chunk by chunk, and a trailers answer cannot give it back: refused, not sent on empty.
      return this.#decide('request_trailers', () =>
        Promise.reject(gatewayError('TG_ERR_INVALID_REQUEST', "A request body that ends in trailers cannot be judged in this ext_proc body mode (tollgate's extproc requestBodyMode BUFFERED, matching Envoy's, can)")),
      );
    }
    return this.#decide('request_trailers', () => Promise.resolve(Buffer.concat(this.#chunks, this.#bytes)));
  }

  #decide(kind: RequestPart, readBody: () => Promise<Buffer>): Promise<Answer> {
    this.#state = 'deciding';
    const { dataPlane: dp, created } = this.#s;
    const ctx = this.#ctx!;
    return decideRequest(dp, ctx, readBody, created, this.#onGone).then(
      (outcome) => (outcome.kind === 'reply' ? this.#reply(outcome.response) : this.#forward(kind, outcome)),
      (err: unknown) => this.#reply(dp.errorResponse(ctx, err)),
    );
  }

  #forward(kind: RequestPart, outcome: Exclude<Outcome, { kind: 'reply' }>): Answer {
    this.#outcome = outcome;
    this.#state = 'forwarded';
    const ctx = this.#ctx!;
    // Envoy forwards it now: a token reservation is kept, not refunded, if the stream is abandoned from here on.
    ctx.attempts = 1;
    if (outcome.kind === 'pick') ctx.endpoint = outcome.pick.endpoints[0];
    else if (outcome.kind === 'url') ctx.endpoint = outcome.endpoints[0];
    if (this.#closed) {
      this.#complete(true);
      return undefined;
    }
    // Envoy sends it upstream on this answer: a hang-up from here on is reconciled to its prompt, as on HTTP.
    ctx.sentUpstream = true;
    const a = requestAnswer(this.#s.dataPlane, ctx, outcome, this.#s.roles, this.#raw, this.#heldChunks > 0);
    const dynamic = this.#forCaller(a.dynamic_metadata);
    const metadata = dynamic && { dynamic_metadata: dynamic };
    if (kind === 'request_trailers') return { request_trailers: {}, ...metadata };
    return { [kind]: { response: a.response }, ...metadata };
  }

  #reply(r: ErrorResponse | DirectResponse): Answer {
    const ctx = this.#ctx!;
    ctx.status = r.status;
    this.#state = 'replied';
    const answer = immediateResponse(ctx, r, this.#raw);
    const dynamic = this.#forCaller(undefined);
    if (dynamic) answer.dynamic_metadata = dynamic;
    this.#complete(this.#closed);
    return this.#closed ? undefined : answer;
  }

  /** A decision's dynamic metadata, with whom the policies identified when a calling tollgate records the request. */
  #forCaller(metadata: PbStruct | undefined): PbStruct | undefined {
    const identity = this.#callerRecords && this.#s.roles.pdp ? identityOf(this.#ctx!) : undefined;
    return identity ? withIdentity(metadata, identity) : metadata;
  }

  #responseHeaders(msg: ProcessingRequest): Answer {
    switch (this.#state) {
      case 'replied':
        return { response_headers: {} };
      case 'forwarded':
        break;
      case 'request-headers':
        throw outOfOrder('response_headers before request_headers');
      case 'request-body':
        return this.#unjudged();
      case 'deciding':
        throw outOfOrder('response_headers before the request was decided');
      default:
        throw outOfOrder('response_headers arrived twice in one stream');
    }
    const h = msg.response_headers!;
    const read = readHeaderMap(h.headers);
    const code = Number(read.pseudo.status);
    if (!Number.isInteger(code)) throw malformed('response_headers without a numeric :status');
    this.#noteServed(servedOf(msg) ?? read.headers[SERVED_KEY]);
    const refused = this.#startResponse(code, read.headers);
    if (refused) return refused;
    const answer: Answer = { response_headers: { response: { header_mutation: this.#response!.headerMutation } } };
    if (h.end_of_stream) this.#endResponse();
    return answer;
  }

  /** The response phase for the answer's status and headers; an answer to send instead when a policy refused it. */
  #startResponse(code: number, headers: IncomingHttpHeaders): Answer | undefined {
    const { dataPlane: dp, roles } = this.#s;
    const ctx = this.#ctx!;
    this.#state = 'response-body';
    try {
      const hooks = ctx.hooks!;
      const respond = roles.pdp && hooks.respond ? hooks.respond.bind(hooks) : undefined;
      this.#response = new ResponsePhase(ctx, code, headers, this.#raw, ctx.config!.settings.server.maxBodyBytes, respond);
    } catch (err) {
      return this.#reply(dp.errorResponse(ctx, err));
    }
    return undefined;
  }

  /**
   * The answer came without tollgate ever seeing the request's body (Envoy sends none in request_body_mode NONE):
   * nothing was judged, so the answer is withheld rather than handed to a caller no policy has seen.
   */
  #unjudged(): Answer {
    const ctx = this.#ctx!;
    this.#s.unjudged(ctx);
    return this.#reply(this.#s.dataPlane.errorResponse(ctx, gatewayError('TG_ERR_INTERNAL', "The gateway's policy decision point never received this request's body (Envoy's ext_proc request_body_mode must be BUFFERED or STREAMED)")));
  }

  /**
   * Envoy went down the list to `served`: the endpoints before it were tried and failed. Where Envoy's own picker
   * chose (`admitted`), the request counts where it says, and a response stored there is routed to it.
   */
  #noteServed(served: unknown): void {
    const o = this.#outcome;
    if (typeof served !== 'string' || served === '' || !o) return;
    if (o.kind === 'admitted') {
      // Envoy made the call: the url is never used, only the address (host:port, as the picker protocol gives it).
      this.#ctx!.endpoint ??= { url: `http://${served}`, address: served };
      return;
    }
    const endpoints = o.kind === 'pick' ? o.pick.endpoints : o.endpoints;
    const i = endpoints.findIndex((e) => e.address === served);
    // Envoy went on to a fallback: the endpoints before it are released, once each, and the request counts where it
    // was served.
    if (i <= this.#served) return;
    if (o.kind === 'pick') {
      for (let j = this.#served; j < i; j++) o.pick.release(endpoints[j], { reached: false });
      o.pick.fallback?.(endpoints[i]);
    }
    this.#served = i;
    this.#ctx!.endpoint = endpoints[i];
    this.#ctx!.attempts = i + 1;
  }

  #responseBody(msg: ProcessingRequest): Answer | Promise<Answer> {
    const b = msg.response_body!;
    if (this.#state === 'replied') return { response_body: {} };
    if (this.#state === 'request-body') return this.#unjudged();
    if (this.#state === 'forwarded') {
      // Envoy skips response headers (response_header_mode SKIP) and sends the body: read as a 200 of the kind it looks.
      this.#noteServed(servedOf(msg));
      const contentType = SSE_START.test((b.body ?? EMPTY).toString('latin1', 0, 64)) ? 'text/event-stream' : 'application/json';
      const refused = this.#startResponse(200, { 'content-type': contentType });
      if (refused) return refused;
    }
    if (this.#state !== 'response-body') {
      throw outOfOrder(this.#state === 'response-done' ? 'response_body after the end of the response' : 'response_body before the request was decided');
    }
    this.#answerBody = true;
    // BUFFERED: Envoy sends the answer once, without end_of_stream when trailers follow (ext_proc.cc onTrailers).
    const end = b.end_of_stream === true || this.#s.wholeResponses;
    const dp = this.#s.dataPlane;
    const ctx = this.#ctx!;
    let r;
    try {
      r = this.#response!.chunk(b.body ?? EMPTY, end);
    } catch (err) {
      return this.#reply(dp.errorResponse(ctx, err));
    }
    if (!(r instanceof Promise)) {
      if (end) this.#endResponse();
      return { response_body: { response: r } };
    }
    return r.then(
      (response): Answer => {
        this.#endResponse();
        return this.#closed ? undefined : { response_body: { response } };
      },
      (err: unknown) => this.#reply(dp.errorResponse(ctx, err)),
    );
  }

  #responseTrailers(msg: ProcessingRequest): Answer {
    if (this.#state === 'request-body') return this.#unjudged();
    if (this.#state === 'response-body' && this.#response!.holding) {
      // The answer was held back (cleared) for a policy that needs it whole, and a trailers answer cannot give it
      // back: refused, not sent on empty.
      const ctx = this.#ctx!;
      return this.#reply(
        this.#s.dataPlane.errorResponse(ctx, gatewayError('TG_ERR_UPSTREAM_ERROR', "An answer that ends in trailers cannot be held for a response policy in this ext_proc response body mode (tollgate's extproc responseBodyMode BUFFERED, matching Envoy's, can)")),
      );
    }
    // After a response whose headers and body Envoy skipped, the trailers end it.
    if (this.#state === 'forwarded') {
      this.#noteServed(servedOf(msg));
      this.#ctx!.answerUnseen = true;
    }
    if (this.#state === 'response-body' || this.#state === 'forwarded') this.#endResponse();
    else if (this.#state !== 'replied' && this.#state !== 'response-done') throw outOfOrder('response_trailers before the request was decided');
    return { response_trailers: {} };
  }

  #endResponse(): void {
    this.#state = 'response-done';
    this.#complete(false);
  }

  /** Accounting, once: the response flow's end, the pick's release, the data plane's finish. */
  #complete(abandoned: boolean): void {
    if (this.#completed) return;
    this.#completed = true;
    const ctx = this.#ctx;
    if (!ctx) return;
    // First: the usage of a hang-up before any of the answer reached the client is its prompt (estimated-usage.ts).
    if (abandoned) ctx.errorCode ??= 'client_closed';
    if (this.#response) {
      if (this.#state === 'response-done') this.#response.end();
      else this.#response.abandon();
    } else if (abandoned) ctx.usage ??= usageAtEnd(ctx, null);
    const o = this.#outcome;
    // An abandoned exchange says nothing about the endpoint's health: it is released as reached. Released with the
    // model server's status, as the data plane is: tollgate's own refusal of a good answer (a response policy, a
    // compressed answer) must neither rest the endpoint nor end a back-off it earned.
    if (o?.kind === 'pick') o.pick.release(o.pick.endpoints[this.#served], { reached: true, status: ctx.upstreamStatus, outputTokens: ctx.usage?.outputTokens });
    this.#s.dataPlane.finish(ctx);
  }

  #write(answer: Answer): void {
    if (answer && !this.#callEnded) this.#call.write(answer);
  }

  /** Envoy half-closed and every answer is out: the stream is over, and the exchange with it (#abandonedAtEnd). */
  #endCall(): void {
    // Envoy ended the stream with the request's body never sent: it went upstream, and its answer back, unjudged.
    if (this.#state === 'request-body') this.#s.unjudged(this.#ctx!);
    this.#close(this.#abandonedAtEnd());
    if (this.#callEnded) return;
    this.#callEnded = true;
    this.#call.end();
  }

  #close(abandoned: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    this.#pending = [];
    this.#onClosed();
    this.#abandoned = abandoned;
    const watchers = this.#goneWatchers;
    this.#goneWatchers = [];
    if (abandoned) for (const gone of watchers) gone();
    // A decision in progress completes the request itself once it is known (its pick must be released).
    if (this.#state !== 'deciding') this.#complete(abandoned);
  }

  #fail(err: unknown): void {
    const protocol = err instanceof ProtocolError;
    if (!protocol) this.#s.logger.error({ err, requestId: this.#ctx?.id }, 'an ext_proc stream failed');
    this.#close(true);
    if (this.#callEnded) return;
    this.#callEnded = true;
    this.#call.emit('error', { code: protocol ? err.code : loadGrpc().status.INTERNAL, details: protocol ? err.message : 'internal error' });
  }
}

/** A body that parses as JSON (as the data plane reads it: UTF-8, a byte order mark skipped). */
function isJson(body: Buffer): boolean {
  try {
    JSON.parse(jsonText(body));
    return true;
  } catch {
    return false;
  }
}
