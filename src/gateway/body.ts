// Reading a request body with a size limit (413) and a deadline against slow clients (408), and the coding it must have (415).
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { clipName } from '../lib/clip-name.js';
import { bodyWithheld, malformedBody } from './listen.js';
import { deadlineAfterIo } from '../lib/with-timeout.js';
import { gatewayError } from './errors.js';

const unreadable = (err: Error) => gatewayError('TG_ERR_INVALID_REQUEST', `Reading the request body failed: ${err.message}`);
const hungUp = () => gatewayError('TG_ERR_CLIENT_CLOSED', 'The client closed the connection before sending the whole body');
export const bodyTooLarge = (maxBytes: number) => gatewayError('TG_ERR_BODY_TOO_LARGE', `The request body is larger than the limit of ${maxBytes} bytes`);

export function readBody(req: IncomingMessage, maxBytes: number, timeoutMs: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > maxBytes) {
    return Promise.reject(bodyTooLarge(maxBytes));
  }
  const malformed = malformedBody(req);
  if (malformed) return Promise.reject(unreadable(malformed));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err: Error | null, body?: Buffer) => {
      if (done) return;
      done = true;
      cancelDeadline();
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (err) {
        // Stop reading what is left, so a huge or stalled upload does not keep the socket busy.
        req.resume();
        reject(err);
      } else resolve(body!);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) finish(bodyTooLarge(maxBytes));
      else chunks.push(chunk);
    };
    const onEnd = () => finish(null, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    const onError = (err: Error & { code?: string }) =>
      // node:http fails a request whose connection closed with ECONNRESET ("aborted"): a hang-up, not a bad request.
      finish(err.code === 'ECONNRESET' ? hungUp() : unreadable(err));
    const onClose = () => finish(hungUp());
    // Judged after reading what arrived meanwhile: a body that came in while this process stalled is not a slow client.
    const cancelDeadline = deadlineAfterIo(timeoutMs, () => finish(gatewayError('TG_ERR_REQUEST_TIMEOUT', `The request body did not arrive within ${timeoutMs} ms`)));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/**
 * A 413 goes out while the client may still be uploading. Closing the connection then resets it (the kernel answers
 * bytes nobody read with RST), and the client sees EPIPE instead of the answer, which the OpenAI SDKs retry by
 * uploading the whole body again. So, as nginx's lingering close does, the connection stays open while the rest of
 * the body is read and dropped, for at most `lingerMs`; a body still coming then is cut. A client that waited on
 * `Expect: 100-continue` and was not asked for its body sends none: its connection closes at once, as before, and
 * so does one whose time is already up (`lingerMs` ≤ 0).
 */
export function lingerAfterRefusal(req: IncomingMessage, headers: Record<string, string>, lingerMs: number): void {
  if (req.complete || bodyWithheld(req) || lingerMs <= 0) return;
  delete headers.connection;
  const socket = req.socket;
  const timer = setTimeout(() => {
    if (!req.complete) socket.destroy();
  }, lingerMs);
  timer.unref();
  const done = () => clearTimeout(timer);
  req.once('end', done);
  req.once('close', done);
}

/**
 * Refuses a body sent compressed (RFC 9110 §8.4: `content-encoding: gzip`, ...). tollgate reads the JSON and may send
 * it on serialized again: neither works on compressed bytes, and passing the header on with bytes tollgate wrote would
 * have the model server decode plain JSON. 415 with `accept-encoding: identity` says what is taken (RFC 9110 §15.5.16).
 */
export function assertUncompressed(headers: IncomingHttpHeaders): void {
  const coding = headers['content-encoding'];
  if (coding === undefined) return;
  for (const c of coding.split(',')) {
    const name = c.trim().toLowerCase();
    if (name !== '' && name !== 'identity') {
      throw gatewayError('TG_ERR_UNSUPPORTED_CONTENT_ENCODING', `The request body is encoded (content-encoding: ${clipName(coding)}); send it uncompressed`, {
        'accept-encoding': 'identity',
      });
    }
  }
}
