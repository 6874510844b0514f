// The keep-alive race: a model server closes an idle connection (uvicorn, so vLLM and SGLang, after 5 s) just as
// tollgate sends a request on it. That request failed before any byte of an answer, and nothing about the endpoint
// is learnt from it: it is sent again, once, on a fresh connection, as Go's Transport does for a server-closed idle
// connection (for a POST too: the proxy already sends one that failed so on to the next endpoint). Unhandled, it was
// a 503 "could not be reached" and the endpoint was taken out of its pool.
import { Client, type Dispatcher } from 'undici';

/** How a connection closed under a request shows: a reset, a write to a closed socket, undici's "other side closed". */
const CLOSED_UNDER_REQUEST = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

type Send = (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) => void;

/**
 * One connection of a pool (an undici Client, which carries one request at a time with `pipelining: 1`) whose
 * requests, failing as above on a socket that had carried a request before, are sent again on a connection opened for
 * them alone (a pool's other idle connections may be as stale). One that fails on a fresh connection is the
 * endpoint's failure, and is reported as ever. The proxy's bodies are Buffers: a request can be sent twice.
 *
 * @example new Pool(origin, { pipelining: 1, factory: retryingConnection })
 */
export function retryingConnection(origin: URL, options: object): Dispatcher {
  const client = new Client(origin, options);
  // Requests written on the current socket: undici announces a new one ('connect') before it writes on it.
  let written = 0;
  client.on('connect', () => (written = 0));
  const reused = () => written++ > 0;
  const fresh: Send = (opts, handler) => {
    const once = new Client(origin, options);
    once.dispatch(opts, handler);
    // Closed as soon as that request is over.
    once.close().catch(() => {});
  };
  return client.compose((dispatch) => (opts, handler) => dispatch(opts, new ReusedConnectionRetry(opts, handler, reused, fresh)));
}

class ReusedConnectionRetry implements Dispatcher.DispatchHandler {
  readonly #opts: Dispatcher.DispatchOptions;
  readonly #handler: Dispatcher.DispatchHandler;
  readonly #reused: () => boolean;
  readonly #fresh: Send;
  #retried = false;
  /** The request went out on a socket that had carried one before, and no byte of an answer has come. */
  #retryable = false;

  constructor(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler, reused: () => boolean, fresh: Send) {
    this.#opts = opts;
    this.#handler = handler;
    this.#reused = reused;
    this.#fresh = fresh;
  }

  /** undici's, as it writes the request: the socket it goes on is known then. */
  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.#retryable = !this.#retried && this.#reused();
    this.#handler.onRequestStart?.(controller, context);
  }

  onResponseStarted(): void {
    this.#retryable = false;
    this.#handler.onResponseStarted?.();
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    this.#handler.onResponseStart?.(controller, status, headers, statusMessage);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#handler.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    this.#handler.onResponseEnd?.(controller, trailers);
  }

  onResponseError(controller: Dispatcher.DispatchController, err: Error): void {
    if (this.#retryable && CLOSED_UNDER_REQUEST.has((err as { code?: string }).code ?? '')) {
      this.#retryable = false;
      this.#retried = true;
      this.#fresh(this.#opts, this);
      return;
    }
    this.#handler.onResponseError?.(controller, err);
  }
}
