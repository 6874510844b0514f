// Sending a request to the model servers and streaming the answer back: endpoints tried in the picker's order
// while nothing has reached the client (connect errors, 503, 429, no first byte in time), first-byte and
// whole-response deadlines, backpressure, client aborts, and an SSE error event when an upstream dies mid-stream.
import { errors, type Dispatcher } from 'undici';
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { EndpointConfig } from '../config/runtime-config.js';
import type { Pick } from '../scheduler/types.js';
import { isProcessShortage } from '../lib/process-shortage.js';
import type { RequestContext } from './context.js';
import { deadlineAfterIo } from '../lib/with-timeout.js';
import { GatewayError, gatewayError, TG_ERRORS } from './errors.js';
import type { UpstreamPools } from './upstream-pools.js';
import { usageScannerFor, type UsageScanner } from './usage.js';
import { responseIdSink } from './stored-responses.js';
import { usageAtEnd } from './estimated-usage.js';
import type { ResponseFlow } from './hooks.js';
import { AnswerCopy } from './answer-copy.js';
import { compressedAnswerError, readableAnswer } from './content-encoding.js';
import { applyPolicyHeaders, dropUnsendableHeaders } from './header-values.js';
import { eventsAtEnd, isCutShort, MAX_HELD_EVENT, SseRewriter, withUsageStripped } from './sse-rewriter.js';
import { EventEnds } from './sse-event-ends.js';
import { endedInsideEvent, faultEvent } from './stream-fault.js';
import { answerReadAs, isEventStream } from './media-type.js';
import { unwatchConnection, watchConnection } from './client-pick-request.js';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'upgrade']);
/**
 * The header names a Connection header lists (RFC 9110 7.6.1): hop-by-hop for this connection only, so a proxy
 * drops them. Nearly every message says just `keep-alive` or `close` (or nothing): no list to build then.
 */
export function connectionListed(value: string | string[] | undefined): string[] {
  if (value === undefined || value === 'keep-alive' || value === 'close') return [];
  const names: string[] = [];
  for (const token of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const name = token.trim().toLowerCase();
    if (name !== '' && name !== 'keep-alive' && name !== 'close') names.push(name);
  }
  return names;
}

const RETRYABLE_STATUS = new Set([429, 503]);
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
/**
 * The model server answered, with bytes that are not an HTTP response: undici's parser error, a head over undici's
 * size limit (nginx: "upstream sent too big header"), or a head whose framing contradicts itself (Content-Length with
 * Transfer-Encoding, two different lengths), which undici reports as a length mismatch before any status
 * (MalformedHead).
 */
const isMalformedAnswer = (err: Error) => err instanceof errors.HTTPParserError || err instanceof errors.HeadersOverflowError || err instanceof MalformedHead;

class MalformedHead extends Error {
  readonly code: string;

  constructor(cause: Error & { code?: string }) {
    super(`${cause.message}: the answer's head frames its body two ways`, { cause });
    this.code = cause.code ?? '';
  }
}
/**
 * undici refused to send the request as shaped (a header value with a line break that a policy copied from the
 * client, say): the request's fault, not the endpoint's, which must stay in the pool for everyone else.
 */
const isUnsendable = (err: Error | undefined) => err instanceof errors.InvalidArgumentError;

export interface ProxyTarget {
  /** Endpoints in order of preference (a pick, or a route's URL). */
  endpoints: EndpointConfig[];
  release?: Pick['release'];
  /** Told of each endpoint after the first that the request goes on to, so the picker counts it there. */
  fallback?: Pick['fallback'];
  /** Path sent upstream (with query). */
  path: string;
  headers: Record<string, string | string[]>;
  body: Buffer | null;
  maxAttempts: number;
  firstByteTimeoutMs: number;
  responseTimeoutMs: number;
  /** The response flow of the policies, asked once the answer's status is known. */
  respond?: (status: number) => ResponseFlow | undefined;
  /** Largest answer a body-rewriting response flow holds in memory. */
  maxBodyBytes: number;
  /** Sends the answer's last bytes (`end`) once the request is accounted for (its usage record written). */
  commit?: (end: () => void) => void;
}

export interface ProxyResult {
  /** A fault to answer with, when nothing was sent yet; undefined when the upstream's answer went to the client. */
  error?: GatewayError;
  /** With an upstream_unavailable fault: the endpoint tried last, and why it could not be reached (the fault's reason). */
  unreachable?: { endpoint: EndpointConfig; reason: string };
}

class RetryNext extends Error {}

const UNAVAILABLE = TG_ERRORS.TG_ERR_UPSTREAM_UNAVAILABLE.code;

/** Our first-byte deadline between the answer's head and its first body byte (undici's headersTimeout is before). */
const FIRST_BYTE_TIMEOUT = 'TG_FIRST_BYTE_TIMEOUT';

function isTimeout(err: Error, code: string): boolean {
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === FIRST_BYTE_TIMEOUT || err.message === 'deadline';
}

/** The status an attempt that missed its first-byte limit counts as for its endpoint: the 504 the gateway answers for it. */
const NO_FIRST_BYTE_STATUS = 504;

/** Streams one request through the endpoints of `target`; resolves once the client's answer is finished or abandoned. */
export function proxyRequest(ctx: RequestContext, res: ServerResponse, pools: UpstreamPools, target: ProxyTarget): Promise<ProxyResult> {
  return new Promise((resolve) => new Exchange(ctx, res, pools, target, resolve).next());
}

class Exchange {
  readonly #ctx: RequestContext;
  readonly #res: ServerResponse;
  readonly #pools: UpstreamPools;
  readonly #target: ProxyTarget;
  readonly #resolve: (r: ProxyResult) => void;
  readonly #socket: Socket;
  #attempt = -1;
  #controller: Dispatcher.DispatchController | null = null;
  #headersSent = false;
  #finished = false;
  #clientGone = false;
  #cancelDeadline: (() => void) | null = null;
  /** When the current attempt's request started out: the first-byte limit counts from there. */
  #sentAt = 0;
  /** The first-byte limit, from the answer's head to its first body byte. */
  #cancelFirstByte: (() => void) | null = null;
  #scanner: UsageScanner | null = null;
  #waitingDrain = false;
  #sse = false;
  /** The answer's bytes are its text (no content-encoding): SSE events can be found in them. */
  #readable = true;
  /** The head the client got declares a content-length: an answer cut short cannot end with an error event. */
  #lengthFramed = false;
  /** Whether what went to the client so far (or is kept for #end) stops inside an SSE event (not after its blank line). */
  #midEvent = false;
  /**
   * A plain SSE pass-through's event ends (#wholeEvents); null when the answer is rewritten or not SSE, or compressed:
   * compressed events pass on as they come (their bytes show no blank line, and looking for one held the whole stream).
   */
  #eventEnds: EventEnds | null = null;
  /** A plain SSE pass-through's event whose blank line has not come yet, as it came (#wholeEvents). */
  #partial: Buffer[] | undefined;
  #partialBytes = 0;
  #rewriter: SseRewriter | null = null;
  #flow: ResponseFlow | undefined;
  /** A body-rewriting flow holds the answer (and its head) until it is complete. */
  #held: { status: number; headers: OutgoingHttpHeaders; chunks: Buffer[]; bytes: number } | null = null;
  /** A flow that only reads the body gets a copy of what goes on to the client. */
  #copy: AnswerCopy | null = null;
  /**
   * With a commit step and a content-length, the byte count that completes the answer: the chunk reaching it is kept
   * for #end, since a client holding content-length bytes has the whole answer before `res.end()` sends anything.
   */
  #completeAt = Infinity;
  /** The model server's body bytes so far, for #completeAt (ctx.bytesOut counts what the client is sent). */
  #upstreamBytes = 0;
  #tail: Buffer | undefined;
  /**
   * The answer's head, written with its first body bytes (node:http sends a head only with them anyway): until
   * then an upstream that fails after its own head (dies, stalls, a 204 with a body) still gets the client a fault
   * of its own, instead of a connection closed without a byte.
   */
  #head: { status: number; headers: OutgoingHttpHeaders } | null = null;

  constructor(ctx: RequestContext, res: ServerResponse, pools: UpstreamPools, target: ProxyTarget, resolve: (r: ProxyResult) => void) {
    this.#ctx = ctx;
    this.#res = res;
    this.#pools = pools;
    this.#target = target;
    this.#resolve = resolve;
    // The connection's close, not the response's: a response pipelined behind another has no socket yet, and its
    // exchange would run on to responseTimeout for a client that is gone.
    this.#socket = res.req.socket;
    watchConnection(this.#socket, this.#onClientClose);
    // Judged after reading what arrived meanwhile, so this process's own stall does not cut an answer that is in.
    this.#cancelDeadline = deadlineAfterIo(target.responseTimeoutMs, this.#onDeadline);
  }

  next(): void {
    this.#attempt++;
    const endpoint = this.#target.endpoints[this.#attempt];
    const last = this.#attempt + 1 >= Math.min(this.#target.maxAttempts, this.#target.endpoints.length);
    this.#ctx.endpoint = endpoint;
    this.#ctx.attempts = this.#attempt + 1;
    // The attempt before has been released (AttemptHandler): the request now counts on this endpoint.
    if (this.#attempt > 0) this.#target.fallback?.(endpoint);
    const handler = new AttemptHandler(this, endpoint, last);
    this.#pools.get(endpoint.url).dispatch(
      {
        origin: endpoint.url,
        path: this.#target.path,
        method: this.#ctx.method,
        headers: this.#target.headers,
        body: this.#target.body,
        headersTimeout: this.#target.firstByteTimeoutMs,
        bodyTimeout: this.#target.responseTimeoutMs,
      },
      handler,
    );
  }

  get clientGone(): boolean {
    return this.#clientGone;
  }

  setController(c: Dispatcher.DispatchController): void {
    this.#controller = c;
    this.#sentAt = performance.now();
    if (!this.#clientGone) this.#ctx.sentUpstream = true;
  }

  release(endpoint: EndpointConfig, reached: boolean, status?: number, err?: Error): void {
    // An endpoint that took the request and sent no first byte in time failed it, as with a 5xx: it rests (its metrics
    // can look idle all along, an engine whose generation hangs running nothing), where counted as nothing it kept
    // being picked first.
    if (!this.#clientGone && this.#missedFirstByte(err)) {
      this.#target.release?.(endpoint, { reached: true, status: NO_FIRST_BYTE_STATUS });
      return;
    }
    // A client that left, or the request's own deadline, ends an attempt without telling anything about the endpoint;
    // nor does this process running short opening the connection (reported down, every endpoint of the pool was taken
    // out at once while the model servers were fine; Envoy keeps such local-origin errors apart too).
    const abandoned = !reached && (this.#clientGone || isUnsendable(err) || isProcessShortage(err) || (err !== undefined && isTimeout(err, (err as { code?: string }).code ?? '')));
    this.#target.release?.(endpoint, { reached, abandoned, status, outputTokens: this.#ctx.usage?.outputTokens });
  }

  /**
   * Whether `err` is the attempt's first-byte limit running out: a streamed request's (firstByteTimeoutMs under
   * responseTimeoutMs), before its head (undici's headersTimeout) or between its head and first body byte. Each
   * attempt has the whole limit from its own start (Envoy's per_try_timeout); the whole-response deadline, counted from
   * the request's start over every attempt, is the request's own and says nothing of the endpoint.
   */
  #missedFirstByte(err: Error | undefined): boolean {
    if (err === undefined || this.#target.firstByteTimeoutMs >= this.#target.responseTimeoutMs) return false;
    const code = (err as { code?: string }).code;
    return code === FIRST_BYTE_TIMEOUT || code === 'UND_ERR_HEADERS_TIMEOUT';
  }

  start(status: number, headers: Record<string, string | string[] | undefined>): void {
    const ctx = this.#ctx;
    ctx.status = status;
    ctx.upstreamStatus = status;
    // undici's headersTimeout saw the head in; what is left of the first-byte limit runs on to the first body byte:
    // uvicorn (vLLM, SGLang) sends a stream's head at once and its first byte with the first token, so a stuck or
    // queued generation held the client to responseTimeout. The head is held till then (#head): a 504 still goes out.
    const firstByte = this.#target.firstByteTimeoutMs;
    if (firstByte < this.#target.responseTimeoutMs) this.#cancelFirstByte = deadlineAfterIo(Math.max(0, firstByte - (performance.now() - this.#sentAt)), this.#onFirstByteDeadline);
    const out: OutgoingHttpHeaders = {};
    for (const name in headers) {
      if (!HOP_BY_HOP.has(name)) out[name] = headers[name];
    }
    for (const name of connectionListed(headers.connection)) delete out[name];
    applyPolicyHeaders(out, ctx);
    out['x-request-id'] = ctx.id;
    const readAs = answerReadAs(headers, status, ctx.stream);
    this.#sse = isEventStream(readAs['content-type']);
    const readable = readableAnswer(headers);
    this.#readable = readable;
    // A stored response read, cancelled or deleted is no generation: the tokens its answer repeats were counted once.
    this.#scanner = ctx.storedResponse ? null : usageScannerFor(readAs, ctx.completion, this.#target.maxBodyBytes, responseIdSink(ctx, status));
    let flow = this.#target.respond?.(status);
    // A compressed answer cannot be read: a flow that only reads it (a cache filling) is skipped.
    if (!readable && flow?.observes) flow = undefined;
    this.#flow = flow;
    if (flow?.headers) {
      flow.headers(status, out);
      // Nothing may fault once the answer has started: a header a policy cannot send is left out, not the answer.
      dropUnsendableHeaders(out);
    }
    const rewrite = withUsageStripped(flow?.event?.bind(flow), this.#ctx.stripStreamUsage === true);
    if (!readable && ((this.#sse && rewrite) || (!this.#sse && flow?.body))) {
      this.#controller?.abort(compressedAnswerError(headers));
      return;
    }
    if (this.#sse && rewrite) {
      this.#rewriter = new SseRewriter(rewrite, eventsAtEnd(flow, this.#ctx.stripStreamUsage === true));
      delete out['content-length'];
    } else if (this.#sse && readable) this.#eventEnds = new EventEnds();
    this.#headersSent = true;
    if (!this.#sse && flow?.body && flow.observes) this.#copy = new AnswerCopy(flow, this.#target.maxBodyBytes);
    else if (!this.#sse && flow?.body) {
      delete out['content-length'];
      this.#held = { status, headers: out, chunks: [], bytes: 0 };
      return;
    }
    if (this.#clientGone) return;
    this.#lengthFramed = out['content-length'] !== undefined;
    if (this.#target.commit && !this.#rewriter && this.#lengthFramed) this.#completeAt = Number(out['content-length']);
    this.#head = { status, headers: out };
  }

  #writeHead(): void {
    const head = this.#head;
    if (!head) return;
    this.#head = null;
    this.#res.writeHead(head.status, head.headers);
  }

  data(chunk: Buffer, controller: Dispatcher.DispatchController): void {
    this.#scanner?.push(chunk);
    this.#firstByteIn();
    if (this.#ctx.ttftMs === undefined && (!this.#sse || !this.#scanner || this.#scanner.events > 0)) this.#ctx.ttftMs = performance.now() - this.#ctx.start;
    this.#upstreamBytes += chunk.length;
    if (this.#clientGone) return;
    const held = this.#held;
    if (held) {
      held.bytes += chunk.length;
      if (held.bytes > this.#target.maxBodyBytes) controller.abort(Object.assign(new Error('the answer is larger than a response policy can hold'), { code: 'TG_RESPONSE_TOO_LARGE' }));
      else held.chunks.push(chunk);
      return;
    }
    this.#copy?.push(chunk);
    const out = this.#rewriter ? this.#rewriter.push(chunk) : this.#eventEnds ? this.#wholeEvents(chunk) : chunk;
    if (typeof out === 'string' && out !== '') this.#midEvent = !out.endsWith('\n\n');
    if (this.#upstreamBytes >= this.#completeAt) {
      // Only without a rewriter: a Buffer.
      this.#tail = out as Buffer;
      return;
    }
    if (out.length === 0) return;
    this.#writeHead();
    // A rewritten stream's text in bytes, not characters: counted in characters, a CJK answer was recorded short.
    this.#ctx.bytesOut += Buffer.byteLength(out);
    if (!this.#res.write(out) && !this.#waitingDrain) {
      this.#waitingDrain = true;
      controller.pause();
      this.#res.once('drain', () => {
        this.#waitingDrain = false;
        controller.resume();
      });
    }
  }

  /**
   * A plain SSE pass-through sends whole events: the start of one is held until its blank line comes, so a model
   * server that dies in the middle of an event leaves nothing half-sent before the error event (a half event would
   * reach the client as JSON no SDK parses). One longer than MAX_HELD_EVENT goes on as it comes.
   */
  #wholeEvents(chunk: Buffer): Buffer {
    // Only the new chunk is searched (EventEnds follows a blank line split across chunks): the held start of an event
    // has no blank line, and searching or copying it again per chunk would be quadratic.
    const end = this.#eventEnds!.last(chunk);
    const held = this.#partial;
    if (end === 0) {
      if (held) held.push(chunk);
      else this.#partial = [chunk];
      this.#partialBytes += chunk.length;
      if (this.#partialBytes <= MAX_HELD_EVENT) return EMPTY;
      this.#midEvent = true;
      return this.#takePartial()!;
    }
    this.#midEvent = false;
    const out = held ? Buffer.concat([...held, chunk.subarray(0, end)]) : chunk.subarray(0, end);
    this.#partial = end < chunk.length ? [chunk.subarray(end)] : undefined;
    this.#partialBytes = chunk.length - end;
    return out;
  }

  /** What is held of an unfinished event, now to go on (the upstream ended, or the event outgrew the limit). */
  #takePartial(): Buffer | undefined {
    const held = this.#partial;
    this.#partial = undefined;
    this.#partialBytes = 0;
    return held && (held.length === 1 ? held[0] : Buffer.concat(held));
  }

  end(): void {
    this.#firstByteIn();
    this.#ctx.usage = this.#scanner?.end();
    // A 200 stream that reported its generation failed (usage.ts ERROR_EVENT) is a fault in the records and metrics.
    if (this.#scanner?.upstreamError) this.#ctx.errorCode ??= 'upstream_error';
    // An answer without a body came whole; a stream's first token is its first data event, and without one it had none.
    if (!this.#sse) this.#ctx.ttftMs ??= performance.now() - this.#ctx.start;
    const held = this.#held;
    if (held) {
      this.#held = null;
      // The flow may rewrite the whole answer; a failing flow is an upstream-side error the client hears about.
      Promise.resolve()
        .then(() => this.#flow!.body!(Buffer.concat(held.chunks, held.bytes), held.status))
        .then((body) => {
          if (this.#clientGone) return this.#ended();
          // The body step may have changed headers too (a script copying model text into one).
          dropUnsendableHeaders(held.headers);
          held.headers['content-length'] = body.length;
          this.#res.writeHead(held.status, held.headers);
          this.#end(body);
        })
        // Whatever fails here (the policy, or writing the head it shaped) is this answer's error: unhandled, it ended the process.
        .catch((err: unknown) => {
          this.#headersSent = this.#res.headersSent;
          this.#finish({ error: err instanceof GatewayError ? err : gatewayError('TG_ERR_INTERNAL', `A response policy failed: ${(err as Error).message}`) });
        });
      return;
    }
    if (this.#clientGone) {
      this.#ctx.usage = usageAtEnd(this.#ctx, this.#scanner);
      this.#ended();
      return;
    }
    // A close-delimited stream whose server died mid-event ends like any other: the half event is no answer.
    if (this.#endsInsideEvent()) {
      this.#cutShort(endedInsideEvent());
      return;
    }
    this.#copy?.end(this.#ctx.upstreamStatus!);
    this.#end(this.#rewriter ? this.#rewriter.end() : this.#lastBytes());
  }

  /** Whether the finished upstream stopped inside an SSE event cut short (isCutShort), not a whole last event. */
  #endsInsideEvent(): boolean {
    if (this.#rewriter) return this.#rewriter.cutShort();
    // After an event too long to hold, what is held is its end, not an event of its own.
    if (!this.#partial || this.#midEvent) return false;
    return isCutShort(Buffer.concat(this.#partial).toString());
  }

  /** The answer's last bytes: what is kept for #end (#completeAt), and the end of a last event without its blank line. */
  #lastBytes(): Buffer | undefined {
    const tail = this.#tail;
    const rest = this.#takePartial();
    return tail && rest ? Buffer.concat([tail, rest]) : (tail ?? rest);
  }

  /** Sends the answer's last bytes once the commit step lets them go; the exchange is over only then. */
  #end(tail: Buffer | string | undefined): void {
    if (tail !== undefined) this.#ctx.bytesOut += Buffer.byteLength(tail);
    // Before the commit step, which writes the record: a stream that ended without its usage is estimated here.
    this.#ctx.usage = usageAtEnd(this.#ctx, this.#scanner);
    const send = () => {
      this.#writeHead();
      this.#res.end(tail);
      this.#ended();
    };
    const commit = this.#target.commit;
    if (commit) commit(send);
    else send();
  }

  #ended(): void {
    this.#flow?.end?.();
    this.#finish({});
  }

  /** An error from the current attempt: retry, answer with a fault, or cut the stream. */
  fail(err: Error, endpoint: EndpointConfig, last: boolean, reached: boolean): void {
    if (this.#finished) return;
    this.#firstByteIn();
    if (this.#clientGone) {
      // The usage read before the client left (a stream's usage chunk, then a hang-up before [DONE]) is what ran;
      // without it, a stream the client got part of is estimated.
      this.#ctx.usage ??= usageAtEnd(this.#ctx, this.#scanner);
      this.#finish({});
      return;
    }
    // No first byte in time: nothing went to the client (the head is held until the first body byte), so the next
    // endpoint gets the request, as after a refused connection.
    if (this.#missedFirstByte(err) && !this.#res.headersSent && !last) {
      this.#discardAnswer();
      this.next();
      return;
    }
    if (!this.#headersSent) {
      const code = (err as { code?: string }).code ?? '';
      // Before the first byte reaches the client, a malformed answer is retried like a refused connection.
      const retryable = err instanceof RetryNext || CONNECT_ERRORS.has(code) || isMalformedAnswer(err);
      if (retryable && !last) {
        this.next();
        return;
      }
      const error = this.#faultFor(err, code, reached);
      this.#finish(error.code === UNAVAILABLE ? { error, unreachable: { endpoint, reason: code || err.message } } : { error });
      return;
    }
    const code = (err as { code?: string }).code ?? '';
    // The server answered: a socket error now is an answer cut short (502), not a server out of reach (503), whether
    // or not a response policy holds the answer.
    const fault = isTimeout(err, code)
      ? gatewayError('TG_ERR_UPSTREAM_TIMEOUT', code === FIRST_BYTE_TIMEOUT ? 'The model server did not start its answer in time' : 'The model server did not finish the answer in time')
      : gatewayError('TG_ERR_UPSTREAM_ERROR', `The model server ended the answer early (${code || err.message})`);
    if (this.#held) {
      this.#held = null;
      this.#finish({ error: code === 'TG_RESPONSE_TOO_LARGE' ? gatewayError('TG_ERR_UPSTREAM_ERROR', err.message) : fault });
      return;
    }
    this.#cutShort(fault);
  }

  /**
   * Forgets the answer an attempt started (start()) and never sent a byte of, before the next attempt starts its own:
   * its status, head, response flow (never ended: it saw no answer) and readers.
   */
  #discardAnswer(): void {
    this.#ctx.status = undefined;
    this.#ctx.upstreamStatus = undefined;
    this.#headersSent = false;
    this.#head = null;
    this.#held = null;
    this.#flow = undefined;
    this.#scanner = null;
    this.#copy = null;
    this.#rewriter = null;
    this.#eventEnds = null;
    this.#lengthFramed = false;
    this.#completeAt = Infinity;
  }

  /** The answer the client is getting ends short of the upstream's, with `fault`. */
  #cutShort(fault: GatewayError): void {
    if (this.#head) {
      // Only the upstream's head came: nothing went to the client yet, which still gets a fault of its own.
      this.#head = null;
      this.#finish({ error: fault });
      return;
    }
    // Bytes have gone out: the status cannot change any more; end the answer so the client does not hang. The records
    // say what the client was told (a timeout is upstream_timeout there too).
    this.#ctx.errorCode = fault.code;
    // An error event ends a stream only as its own text in a body whose end the client finds: in a compressed body it
    // corrupted what the client decoded, and past a content-length the client never read it and waited for the bytes
    // promised (on a kept-alive connection, until its own timeout).
    if (this.#sse && this.#readable && !this.#lengthFramed) {
      const tail = faultEvent(fault, this.#midEvent, this.#ctx.operation === 'responses' ? (this.#scanner?.nextSequence ?? 0) : undefined);
      this.#ctx.bytesOut += Buffer.byteLength(tail);
      this.#res.end(tail);
    } else this.#cutConnection();
    this.#ctx.usage = usageAtEnd(this.#ctx, this.#scanner);
    this.#finish({});
  }

  /**
   * Ends the connection once what was written has gone: the client sees its answer end short (no last chunk, or fewer
   * bytes than its content-length), where ending the response would have framed a cut answer as complete.
   */
  #cutConnection(): void {
    const socket = this.#res.socket;
    if (socket && !socket.destroyed) socket.end(() => socket.destroy());
    else this.#res.destroy();
  }

  #faultFor(err: Error, code: string, reached: boolean): GatewayError {
    // Our own refusal of the answer (compressedAnswerError), already in its final shape.
    if (err instanceof GatewayError) return err;
    if (isUnsendable(err)) return gatewayError('TG_ERR_INVALID_REQUEST', `The request cannot be sent to the model server as the policies shaped it (${err.message})`);
    if (isTimeout(err, code)) {
      return gatewayError('TG_ERR_UPSTREAM_TIMEOUT', 'The model server did not answer in time');
    }
    if (isMalformedAnswer(err)) return gatewayError('TG_ERR_UPSTREAM_ERROR', `The model server's answer was not valid HTTP (${err.message})`);
    // A socket error from a server that answered is its failure, not one that could not be reached.
    if (!reached) {
      return gatewayError('TG_ERR_UPSTREAM_UNAVAILABLE', `The model servers could not be reached (${code || err.message})`);
    }
    return gatewayError('TG_ERR_UPSTREAM_ERROR', `The model server failed: ${err.message}`);
  }

  #finish(result: ProxyResult): void {
    if (this.#finished) return;
    this.#finished = true;
    // A client gone before the head went out (it is held until the first body byte), or before a pipelined
    // response got the connection, got no status at all.
    if (this.#clientGone && (!this.#res.headersSent || !this.#res.socket)) this.#ctx.status = undefined;
    this.#cancelDeadline?.();
    unwatchConnection(this.#socket, this.#onClientClose);
    this.#resolve(result);
  }

  #onClientClose = (): void => {
    if (this.#finished || this.#res.writableFinished) return;
    this.#clientGone = true;
    this.#ctx.errorCode ??= 'client_closed';
    // A response pipelined behind another never had the connection: nothing it buffered reached the client.
    if (!this.#res.socket) this.#ctx.bytesOut = 0;
    this.#controller?.abort(new Error('client closed the connection'));
  };

  #onDeadline = (): void => {
    this.#cancelDeadline = null;
    this.#controller?.abort(new Error('deadline'));
  };

  #onFirstByteDeadline = (): void => {
    this.#cancelFirstByte = null;
    this.#controller?.abort(Object.assign(new Error('no first body byte in time'), { code: FIRST_BYTE_TIMEOUT }));
  };

  /** The answer's first body byte came (or the attempt is over): the first-byte limit is done with. */
  #firstByteIn(): void {
    this.#cancelFirstByte?.();
    this.#cancelFirstByte = null;
  }
}

const EMPTY = Buffer.alloc(0);

class AttemptHandler implements Dispatcher.DispatchHandler {
  readonly #exchange: Exchange;
  readonly #endpoint: EndpointConfig;
  readonly #last: boolean;
  #retrying = false;
  #status: number | undefined;
  /** The first byte of an answer came: a socket error now is the server failing, not one out of reach. */
  #answering = false;
  #released = false;

  constructor(exchange: Exchange, endpoint: EndpointConfig, last: boolean) {
    this.#exchange = exchange;
    this.#endpoint = endpoint;
    this.#last = last;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#exchange.setController(controller);
    if (this.#exchange.clientGone) controller.abort(new Error('client closed the connection'));
  }

  /**
   * undici's, at the first byte of the answer's head: a server that then closes mid-head, or sends a 100 Continue
   * nobody asked for (which undici cannot read past: "bad response"), answered with something tollgate cannot use.
   */
  onResponseStarted(): void {
    this.#answering = true;
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>): void {
    if (status < 200) return;
    this.#status = status;
    if (!this.#last && RETRYABLE_STATUS.has(status)) {
      this.#retrying = true;
      controller.abort(new RetryNext(`upstream answered ${status}`));
      return;
    }
    this.#exchange.start(status, headers);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#retrying) this.#exchange.data(chunk, controller);
  }

  onResponseEnd(): void {
    this.#release(true);
    this.#exchange.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.#status === undefined && err instanceof errors.ResponseContentLengthMismatchError) err = new MalformedHead(err);
    // A server that answered with a head that is not HTTP, or only part of one, was reached: it is not reported down
    // (its scrapes judge it).
    const reached = this.#status !== undefined || this.#answering || isMalformedAnswer(err);
    this.#release(reached, err);
    this.#exchange.fail(this.#retrying ? new RetryNext(err.message) : err, this.#endpoint, this.#last, reached);
  }

  #release(reached: boolean, err?: Error): void {
    if (this.#released) return;
    this.#released = true;
    this.#exchange.release(this.#endpoint, reached, this.#status, err);
  }
}
