// Reading JSON request bodies and writing JSON answers and OpenAI-shaped errors for the simulator's HTTP server.
import type { IncomingMessage, ServerResponse } from 'node:http';

const MAX_BODY_BYTES = 32 * 1024 * 1024;

export class HttpError extends Error {
  readonly status: number;
  readonly type: string;
  readonly code: string;
  readonly headers: Record<string, string>;

  constructor(status: number, type: string, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.type = type;
    this.code = code;
    this.headers = headers;
  }
}

export function invalidRequest(message: string, code = 'invalid_request'): HttpError {
  return new HttpError(400, 'invalid_request_error', code, message);
}

export function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, 'invalid_request_error', 'body_too_large', 'The request body is too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', reject);
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(invalidRequest('The request body is not valid JSON', 'invalid_json'));
      }
    });
  });
}

export function sendJson(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

export function sendError(res: ServerResponse, err: HttpError): void {
  const body = JSON.stringify({ error: { message: err.message, type: err.type, code: err.code } });
  sendJson(res, err.status, body, err.headers);
}
