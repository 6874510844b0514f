// Calling an ext_proc server the way Envoy does: one Process stream per HTTP request, each message answered in
// order, every answer awaited under a per-message timeout. Failures carry a reason for the failure metric; a stream
// the server closes cleanly means going on without it (the proto's step 6), which is no failure.
import type { ChannelCredentials, Client, ClientDuplexStream, Metadata, ServiceError } from '@grpc/grpc-js';
import { deadlineAfterIo } from '../lib/with-timeout.js';
import { loadGrpc } from './grpc.js';
import type { ProcessingRequest, ProcessingResponse } from './messages.js';
import { maxMessageBytes } from './message-limit.js';
import { extProcService } from './protos.js';

export type FailureReason = 'unavailable' | 'timeout' | 'error' | 'invalid_response';

export class ExtprocCallError extends Error {
  readonly reason: FailureReason;

  constructor(reason: FailureReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

export interface ExtprocClientOptions {
  /** host:port of the ext_proc server. */
  address: string;
  /** TLS: `ca` verifies the server (Node's roots without it), `cert`/`key` present a client certificate (mTLS). */
  tls?: ClientTls;
  /** :authority sent to the server (Envoy's `authority`). */
  authority?: string;
  /** The body limit (server.maxBodyBytes) its messages and answers are sized for; default the setting's default. */
  maxBodyBytes?: number;
  /** gRPC metadata sent on every stream (callerRecordsMetadata). */
  metadata?: () => Metadata;
}

/** PEM bytes, read where the configuration loads (readExtensionTls): the client reads no file. */
export interface ClientTls {
  ca: Buffer | null;
  cert: Buffer | null;
  key: Buffer | null;
}

type ProcessClient = Client & { Process(metadata?: Metadata): ClientDuplexStream<ProcessingRequest, ProcessingResponse> };

function channelCredentials(tls: ExtprocClientOptions['tls']): ChannelCredentials {
  const { credentials } = loadGrpc();
  if (!tls) return credentials.createInsecure();
  return credentials.createSsl(tls.ca, tls.key, tls.cert);
}

/** One channel per server (HTTP/2 multiplexes the streams). */
export class ExtprocClient {
  readonly #client: ProcessClient;
  readonly #metadata: (() => Metadata) | undefined;

  constructor(options: ExtprocClientOptions) {
    this.#metadata = options.metadata;
    const Ctor = loadGrpc().makeGenericClientConstructor(extProcService(), 'ExternalProcessor');
    // An answer that rewrites a body carries it whole: grpc-js's default 4 MiB failed every one above that.
    const limit = maxMessageBytes(options.maxBodyBytes);
    const channelOptions: Record<string, number | string> = { 'grpc.max_receive_message_length': limit, 'grpc.max_send_message_length': limit };
    if (options.authority) channelOptions['grpc.default_authority'] = options.authority;
    this.#client = new Ctor(options.address, channelCredentials(options.tls), channelOptions) as unknown as ProcessClient;
  }

  /**
   * A stream for one HTTP request; every answer must come within `timeoutMs` of its message. `onClosed` hears of a
   * server that closed the stream cleanly before tollgate was done with it; `onAnswer` sees every answer as it comes.
   */
  open(timeoutMs: number, onClosed?: () => void, onAnswer?: (r: ProcessingResponse) => void): ExtprocCall {
    return new ExtprocCall(this.#client.Process(this.#metadata?.()), timeoutMs, onClosed, onAnswer);
  }

  close(): void {
    this.#client.close();
  }
}

/** The answer to every message once the server closed the stream cleanly: go on without it (the proto's step 6). */
export const STREAM_CLOSED: ProcessingResponse = Object.freeze({});

interface Waiter {
  resolve(r: ProcessingResponse): void;
  reject(e: ExtprocCallError): void;
  cancelTimer: () => void;
}

export class ExtprocCall {
  readonly #stream: ClientDuplexStream<ProcessingRequest, ProcessingResponse>;
  readonly #timeoutMs: number;
  readonly #onAnswer: ((r: ProcessingResponse) => void) | undefined;
  readonly #waiting: Waiter[] = [];
  #failure: ExtprocCallError | null = null;
  #observing = false;
  #ended = false;
  /** The server closed the stream cleanly: it is not consulted any more. */
  #closed = false;

  constructor(stream: ClientDuplexStream<ProcessingRequest, ProcessingResponse>, timeoutMs: number, onClosed?: () => void, onAnswer?: (r: ProcessingResponse) => void) {
    this.#stream = stream;
    this.#timeoutMs = timeoutMs;
    this.#onAnswer = onAnswer;
    stream.on('data', this.#onData);
    stream.on('error', this.#onError);
    // grpc-js emits 'error' for any status but OK before the stream ends: an end with no failure is a clean close.
    stream.on('end', () => {
      if (this.#failure || this.#ended) return;
      this.#closed = true;
      this.#ended = true;
      for (const w of this.#waiting.splice(0)) {
        w.cancelTimer();
        w.resolve(STREAM_CLOSED);
      }
      onClosed?.();
    });
  }

  /** Sends one message and resolves with its answer, or STREAM_CLOSED once the server closed the stream cleanly. */
  send(msg: ProcessingRequest): Promise<ProcessingResponse> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.resolve(STREAM_CLOSED);
    return new Promise((resolve, reject) => {
      const cancelTimer = deadlineAfterIo(this.#timeoutMs, () => this.#fail(new ExtprocCallError('timeout', `the extension did not answer within ${this.#timeoutMs} ms`)));
      this.#waiting.push({ resolve, reject, cancelTimer });
      this.#stream.write(msg);
    });
  }

  /** Sends one message in observability mode: no answer is expected, and any that comes is ignored from now on. */
  post(msg: ProcessingRequest): void {
    if (this.#failure || this.#ended) return;
    this.#observing = true;
    this.#stream.write({ ...msg, observability_mode: true });
  }

  /** Half-closes: the exchange is over (cancels instead when answers are still awaited). */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#waiting.length > 0) return this.cancel();
    this.#stream.end();
    // A server that never ends its side would hold the stream for ever (and, at its stream limit, starve later
    // requests). Envoy resets it at once; this leaves the server its timeout to read what was posted to it first.
    const cancelTimer = deadlineAfterIo(this.#timeoutMs, () => this.#stream.cancel());
    this.#stream.once('status', cancelTimer);
  }

  cancel(): void {
    this.#ended = true;
    this.#fail(new ExtprocCallError('error', 'cancelled'));
    this.#stream.cancel();
  }

  #onData = (r: ProcessingResponse): void => {
    const w = this.#waiting.shift();
    if (w) {
      w.cancelTimer();
      this.#onAnswer?.(r);
      w.resolve(r);
    } else if (!this.#observing) this.#fail(new ExtprocCallError('invalid_response', 'the extension sent an answer to no message'), true);
  };

  #onError = (err: ServiceError): void => {
    const { status } = loadGrpc();
    if (err.code === status.CANCELLED && this.#failure) return;
    const reason: FailureReason = err.code === status.UNAVAILABLE ? 'unavailable' : err.code === status.DEADLINE_EXCEEDED ? 'timeout' : 'error';
    this.#fail(new ExtprocCallError(reason, `the extension failed: ${err.details || err.message}`));
  };

  #fail(err: ExtprocCallError, cancel = false): void {
    if (!this.#failure) this.#failure = err;
    for (const w of this.#waiting.splice(0)) {
      w.cancelTimer();
      w.reject(this.#failure);
    }
    if (cancel || err.reason === 'timeout') {
      this.#ended = true;
      this.#stream.cancel();
    }
  }
}
