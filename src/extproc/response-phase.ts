// The model server's answer as Envoy shows it to tollgate: token usage read from JSON or SSE, and the policies'
// response flow applied as mutations — headers (with the rate-limit figures the data plane adds), a whole-body
// rewrite (the body held back until complete) or per-event rewrites of a stream; a flow that only reads the body
// (a cache filling) gets a copy.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { RequestContext } from '../gateway/context.js';
import { compressedAnswerError, readableAnswer } from '../gateway/content-encoding.js';
import { gatewayError } from '../gateway/errors.js';
import { applyPolicyHeaders, dropUnsendableHeaders } from '../gateway/header-values.js';
import type { ResponseFlow } from '../gateway/hooks.js';
import { AnswerCopy } from '../gateway/answer-copy.js';
import { eventsAtEnd, SseRewriter, withUsageStripped } from '../gateway/sse-rewriter.js';
import { endedInsideEvent, faultEvent } from '../gateway/stream-fault.js';
import { usageScannerFor, type UsageScanner } from '../gateway/usage.js';
import { responseIdSink } from '../gateway/stored-responses.js';
import { usageAtEnd } from '../gateway/estimated-usage.js';
import { MutationBuilder, diffHeaders } from './headers.js';
import type { BodyMutation, CommonResponse } from './messages.js';
import { SERVED_KEY } from './request-answer.js';
import { answerReadAs, isEventStream } from '../gateway/media-type.js';

const CLEAR: BodyMutation = { clear_body: true };

export class ResponsePhase {
  readonly #ctx: RequestContext;
  readonly #status: number;
  readonly #flow: ResponseFlow | undefined;
  /** null for a compressed stream or a coding node:zlib does not read (usageScannerFor): its usage cannot be read. */
  readonly #scanner: UsageScanner | null;
  readonly #rewriter: SseRewriter | null = null;
  /** The rewritten stream ended inside an event cut short: no complete answer, so the flow gets no `end`. */
  #cut = false;
  readonly #maxBodyBytes: number;
  readonly #raw: boolean;
  /** Chunks of an answer a body-rewriting flow needs whole. */
  #held: Buffer[] | null = null;
  #heldBytes = 0;
  /** A flow that only reads the body gets a copy of what Envoy sends on. */
  readonly #copy: AnswerCopy | null = null;
  /** TTFT still reads the head's time: replaced by the first body byte's (a stream's first event) when the body comes. */
  #ttftAtHead = true;
  readonly #sse: boolean;
  /** The headers as the flow shaped them, and as Envoy was told them: a body step may change them again. */
  #shaped: OutgoingHttpHeaders = {};
  #told: OutgoingHttpHeaders = {};
  readonly headerMutation: CommonResponse['header_mutation'];

  /** `respond` is the data plane's response-flow hook (absent when no policy runs here). */
  constructor(ctx: RequestContext, status: number, headers: IncomingHttpHeaders, raw: boolean, maxBodyBytes: number, respond: ((ctx: RequestContext, status: number) => ResponseFlow | undefined) | undefined) {
    this.#ctx = ctx;
    this.#status = status;
    this.#maxBodyBytes = maxBodyBytes;
    this.#raw = raw;
    ctx.status = status;
    ctx.upstreamStatus = status;
    ctx.ttftMs = performance.now() - ctx.start;
    // A stream asked for, answered 2xx without a content-type, is the event stream it asked for (answerReadAs).
    const readAs = answerReadAs(headers, status, ctx.stream);
    const sse = isEventStream(readAs['content-type']);
    this.#sse = sse;
    const readable = readableAnswer(headers);
    // A stored response read, cancelled or deleted is no generation: the tokens its answer repeats were counted once.
    this.#scanner = ctx.storedResponse ? null : usageScannerFor(readAs, ctx.completion, maxBodyBytes, responseIdSink(ctx, status));
    let flow = respond?.(ctx, status);
    if (!readable && flow?.observes) flow = undefined;
    this.#flow = flow;
    const out: OutgoingHttpHeaders = { ...headers };
    applyPolicyHeaders(out, ctx);
    out['x-request-id'] = ctx.id;
    // Envoy's report to the picker, never the client's business (the Inference Extension strips it too).
    delete out[SERVED_KEY];
    if (flow?.headers) {
      flow.headers(status, out);
      dropUnsendableHeaders(out);
    }
    const rewrite = withUsageStripped(flow?.event?.bind(flow), ctx.stripStreamUsage === true);
    if (!readable && ((sse && rewrite) || (!sse && flow?.body))) throw compressedAnswerError(headers);
    if (sse && rewrite) {
      this.#rewriter = new SseRewriter(rewrite, eventsAtEnd(flow, ctx.stripStreamUsage === true));
      delete out['content-length'];
    } else if (!sse && flow?.body && flow.observes) this.#copy = new AnswerCopy(flow, maxBodyBytes);
    else if (!sse && flow?.body) {
      this.#held = [];
      delete out['content-length'];
    }
    const mutation = new MutationBuilder(raw);
    diffHeaders(headers, out, mutation);
    this.headerMutation = mutation.build();
    // Only a held body's step can change them again: what Envoy was told is kept to send the difference with it.
    if (this.#held) {
      this.#shaped = out;
      this.#told = { ...out };
    }
  }

  /** The answer to one response_body message; a promise only for the last chunk of a held body. Throws a GatewayError. */
  chunk(body: Buffer, end: boolean): CommonResponse | Promise<CommonResponse> {
    const ctx = this.#ctx;
    this.#scanner?.push(body);
    // As the data plane times it; the head's time stands when Envoy sends no body (response_body_mode NONE).
    if (this.#ttftAtHead && (!this.#sse || !this.#scanner || this.#scanner.events > 0)) {
      this.#ttftAtHead = false;
      ctx.ttftMs = performance.now() - ctx.start;
    }
    if (this.#held) return this.#hold(body, end);
    this.#copy?.push(body);
    // What Envoy is told to send on: the chunk as it came, or as the rewriter made it.
    let answer: CommonResponse = {};
    if (this.#rewriter) {
      const out = Buffer.from(this.#rewriter.push(body) + (end ? this.#lastEvents() : ''));
      answer = { body_mutation: out.length === 0 ? CLEAR : { body: out } };
      ctx.bytesOut += out.length;
    } else ctx.bytesOut += body.length;
    if (end) ctx.usage = usageAtEnd(ctx, this.#scanner);
    return answer;
  }

  /** Body chunks were held back (cleared) for a body-rewriting flow that has not run yet. */
  get holding(): boolean {
    return this.#held !== null && this.#held.length > 0;
  }

  /** The answer is over (its last body chunk, trailers, or Envoy closing the stream); usage is final. */
  end(): void {
    this.#ctx.usage ??= usageAtEnd(this.#ctx, this.#scanner);
    if (this.#scanner?.upstreamError) this.#ctx.errorCode ??= 'upstream_error';
    if (this.#cut) return;
    this.#copy?.end(this.#status);
    this.#flow?.end?.();
  }

  /** Abandoned: usage as far as it was seen, and no `end` for the flow. */
  abandon(): void {
    this.#ctx.usage ??= usageAtEnd(this.#ctx, this.#scanner);
  }

  /**
   * A rewritten stream's end, as the data plane ends it: what the rewriter still holds, or, when the model server
   * stopped inside an event cut short, the error event in its place. The half event goes to no rewrite, which would
   * pass on what it cannot read (a sanitizer's secret with it).
   */
  #lastEvents(): string {
    const rewriter = this.#rewriter!;
    if (!rewriter.cutShort()) return rewriter.end();
    this.#cut = true;
    const fault = endedInsideEvent();
    this.#ctx.errorCode = fault.code;
    // What the rewriter passed on so far is whole events: no half line to end first.
    return faultEvent(fault, false, this.#ctx.operation === 'responses' ? (this.#scanner?.nextSequence ?? 0) : undefined);
  }

  #hold(body: Buffer, end: boolean): CommonResponse | Promise<CommonResponse> {
    const held = this.#held!;
    this.#heldBytes += body.length;
    if (this.#heldBytes > this.#maxBodyBytes) throw gatewayError('TG_ERR_UPSTREAM_ERROR', 'the answer is larger than a response policy can hold');
    held.push(body);
    if (!end) return { body_mutation: CLEAR };
    this.#held = null;
    this.#ctx.usage = this.#scanner?.end();
    return Promise.resolve(this.#flow!.body!(Buffer.concat(held, this.#heldBytes), this.#status)).then((rewritten) => {
      // Header changes the body step made (a script's response.headers) go with the body: with the answer buffered,
      // Envoy still holds its headers and applies them.
      const out = this.#shaped;
      dropUnsendableHeaders(out);
      out['content-length'] = String(rewritten.length);
      this.#ctx.bytesOut += rewritten.length;
      const mutation = new MutationBuilder(this.#raw);
      diffHeaders(this.#told, out, mutation);
      return { body_mutation: { body: rewritten }, header_mutation: mutation.build() };
    });
  }
}
