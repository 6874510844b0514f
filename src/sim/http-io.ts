// Reading JSON request bodies and writing JSON answers and vLLM-shaped errors for the simulator's HTTP server.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../lib/json-depth.js';

const MAX_BODY_BYTES = 32 * 1024 * 1024;

/**
 * vLLM's `error.type` by status: the names its OpenAI server gives (BadRequestError, NotFoundError,
 * InternalServerError), the same naming for the statuses only the simulator answers.
 */
const ERROR_TYPES: Record<number, string> = {
  400: 'BadRequestError',
  404: 'NotFoundError',
  405: 'MethodNotAllowedError',
  413: 'RequestEntityTooLargeError',
  429: 'RateLimitError',
  500: 'InternalServerError',
  503: 'ServiceUnavailableError',
};

/** An answer of vLLM's error shape: `{"error": {"message", "type", "param", "code": <status>}}`. */
export class HttpError extends Error {
  readonly status: number;
  /** The request field at fault, as vLLM names it (`model`, `temperature`, `input_tokens`), or null. */
  readonly param: string | null;
  readonly headers: Record<string, string>;

  constructor(status: number, message: string, opts: { param?: string | null; headers?: Record<string, string> } = {}) {
    super(message);
    this.status = status;
    this.param = opts.param ?? null;
    this.headers = opts.headers ?? {};
  }

  get type(): string {
    return ERROR_TYPES[this.status] ?? (this.status >= 500 ? 'InternalServerError' : 'BadRequestError');
  }
}

export function invalidRequest(message: string, param: string | null = null): HttpError {
  return new HttpError(400, message, { param });
}

export function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) return void chunks.push(chunk);
      // The rest of the body is read and dropped, not refused by a reset: a client still sending would lose the 413.
      req.off('data', onData);
      req.resume();
      chunks.length = 0;
      reject(new HttpError(413, 'The request body is too large', { headers: { connection: 'close' } }));
    };
    req.on('data', onData);
    req.on('error', reject);
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) return;
      const raw = Buffer.concat(chunks);
      let body: unknown;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        return reject(invalidRequest('The request body is not valid JSON'));
      }
      // Answers echo request fields (the Responses API's text, tools, metadata, input): serialising a value nested
      // thousands deep overflows the stack, so such a body is refused here, at the gateway's own bound.
      if (nestsDeeperThan(raw, MAX_JSON_DEPTH)) return reject(invalidRequest(`The request body nests deeper than ${MAX_JSON_DEPTH} levels`));
      resolve(body);
    });
  });
}

export function sendJson(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

export function sendError(res: ServerResponse, err: HttpError): void {
  const body = JSON.stringify({ error: { message: err.message, type: err.type, param: err.param, code: err.status } });
  sendJson(res, err.status, body, err.headers);
}
