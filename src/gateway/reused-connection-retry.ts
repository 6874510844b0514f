// The keep-alive race: a model server closes an idle connection (uvicorn, so vLLM and SGLang, after 5 s) just as
// tollgate sends a request on it. That request failed before any byte of an answer, and nothing about the endpoint
// is learnt from it: it is sent again, once, on a fresh connection, as Go's Transport does for a server-closed idle
// connection (for a POST too: the proxy already sends one that failed so on to the next endpoint). Unhandled, it was
// a 503 "could not be reached" and the endpoint was taken out of its pool.
import { Client, type Dispatcher } from 'undici';

/** How a connection closed under a request shows: a reset, a write to a closed socket, undici's "other side closed". */
const CLOSED_UNDER_REQUEST = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

/**
 * One connection of a pool (an undici Client, which carries one request at a time with `pipelining: 1`) whose
 * requests, failing as above on a socket that had carried a request before, are sent again on a connection opened for
 * them alone (a pool's other idle connections may be as stale). One that fails on a fresh connection is the
 * endpoint's failure, and is reported as ever. The proxy's bodies are Buffers: a request can be sent twice.
 * A subclass rather than `client.compose()`: a composed client is a Proxy that the pool reads on every dispatch, and
 * that cost the proxy 15-25 µs of CPU per request (`tollgate bench overhead`, no policies).
 *
 * @example new Pool(origin, { pipelining: 1, factory: (origin, options) => new RetryingClient(origin, options) })
 */
export class RetryingClient extends Client {
  readonly #origin: URL;
  readonly #options: Client.Options;
  /** Requests written on the current socket: undici announces a new one ('connect') before it writes on it. */
  #written = 0;

  constructor(origin: URL, options: Client.Options) {
    super(origin, options);
    this.#origin = origin;
    this.#options = options;
    this.on('connect', () => (this.#written = 0));
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return super.dispatch(opts, new ReusedConnectionRetry(opts, handler, this));
  }

  /** Called as a request is written: whether its socket carried one before. */
  reused(): boolean {
    return this.#written++ > 0;
  }

  /** Sends a request on a connection of its own, closed as soon as that request is over. */
  fresh(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): void {
    const once = new Client(this.#origin, this.#options);
    once.dispatch(opts, handler);
    once.close().catch(() => {});
  }
}

/**
 * The pool hands its connections requests in undici's callback form (onConnect ... onComplete), so this handler
 * speaks it too: the controller form would make undici wrap each request once more.
 */
class ReusedConnectionRetry implements Dispatcher.DispatchHandler {
  readonly #opts: Dispatcher.DispatchOptions;
  readonly #handler: Dispatcher.DispatchHandler;
  readonly #client: RetryingClient;
  #retried = false;
  /** The request went out on a socket that had carried one before, and no byte of an answer has come. */
  #retryable = false;

  constructor(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler, client: RetryingClient) {
    this.#opts = opts;
    this.#handler = handler;
    this.#client = client;
  }

  /** As the request is written: the socket it goes on is known then. */
  onConnect(abort: (err?: Error) => void): void {
    this.#retryable = !this.#retried && this.#client.reused();
    this.#handler.onConnect?.(abort);
  }

  onResponseStarted(): void {
    this.#retryable = false;
    this.#handler.onResponseStarted?.();
  }

  onHeaders(statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean {
    return this.#handler.onHeaders?.(statusCode, headers, resume, statusText) ?? true;
  }

  onData(chunk: Buffer): boolean {
    return this.#handler.onData?.(chunk) ?? true;
  }

  onComplete(trailers: string[] | null): void {
    this.#handler.onComplete?.(trailers);
  }

  onBodySent(chunkSize: number, totalBytesSent: number): void {
    this.#handler.onBodySent?.(chunkSize, totalBytesSent);
  }

  onError(err: Error): void {
    if (this.#retryable && CLOSED_UNDER_REQUEST.has((err as { code?: string }).code ?? '')) {
      this.#retryable = false;
      this.#retried = true;
      this.#client.fresh(this.#opts, this);
      return;
    }
    this.#handler.onError?.(err);
  }
}
