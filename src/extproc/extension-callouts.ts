// The messages an extension is sent for one request, in Envoy's order and body modes: the request's headers and
// body before the request is decided, the answer's headers and body once the model server has answered.
import type { OutgoingHttpHeaders } from 'node:http';
import type { RequestContext } from '../gateway/context.js';
import type { ExtprocCall } from './client.js';
import { commonOf, mutateBody, mutateRequest, mutateResponse, replaceRequestBody } from './apply-mutations.js';
import { headerMap } from './headers.js';
import { CONTINUE_AND_REPLACE, type CommonResponse, type ProcessingRequest } from './messages.js';

export type ExtensionEvent = 'RequestHeaders' | 'RequestBody' | 'ResponseHeaders' | 'ResponseBody';
export type BodySendMode = 'BUFFERED' | 'STREAMED';

/** Envoy's HTTP/2 frames are at most this large; streamed bodies go in pieces of this size. */
const CHUNK = 64 * 1024;

export interface CalloutPlan {
  events: ReadonlySet<ExtensionEvent>;
  requestBodyMode: BodySendMode;
  responseBodyMode: BodySendMode;
}

type BodyKind = 'request_body' | 'response_body';

/** Sends a body as Envoy would in `mode` and returns it with every answer's body mutation applied. */
async function sendBody(call: ExtprocCall, kind: BodyKind, body: Buffer, mode: BodySendMode, onAnswer: (c: CommonResponse) => void): Promise<Buffer> {
  if (mode === 'BUFFERED' || body.length <= CHUNK) {
    const c = commonOf(await call.send({ [kind]: { body, end_of_stream: true } } as ProcessingRequest), kind);
    onAnswer(c);
    return mutateBody(body, c.body_mutation);
  }
  const pieces: Buffer[] = [];
  for (let i = 0; i < body.length; i += CHUNK) pieces.push(body.subarray(i, i + CHUNK));
  // Every piece goes out at once; each answer then rewrites its own piece.
  const answers = pieces.map((p, i) => call.send({ [kind]: { body: p, end_of_stream: i === pieces.length - 1 } } as ProcessingRequest));
  // A failure (or a verdict) at one piece ends the loop there, and the call then rejects the later pieces' answers,
  // which nothing awaits: unhandled, such a rejection ends the process.
  for (const a of answers) a.catch(() => {});
  const out: Buffer[] = [];
  for (let i = 0; i < pieces.length; i++) {
    const c = commonOf(await answers[i], kind);
    onAnswer(c);
    out.push(mutateBody(pieces[i], c.body_mutation));
  }
  return Buffer.concat(out);
}

/** Request headers and body; the extension's changes land in ctx. Throws ExtensionResponse or ExtprocCallError. */
export async function requestCallout(call: ExtprocCall, ctx: RequestContext, plan: CalloutPlan): Promise<void> {
  const body = ctx.rawBody ?? Buffer.alloc(0);
  let replaced = false;
  if (plan.events.has('RequestHeaders')) {
    const pseudo: [string, string][] = [[':method', ctx.method], [':path', ctx.url], [':scheme', 'http']];
    if (typeof ctx.headers.host === 'string') pseudo.push([':authority', ctx.headers.host]);
    const headers = headerMap(pseudo, ctx.headers, { 'x-request-id': ctx.id });
    const c = commonOf(await call.send({ request_headers: { headers, end_of_stream: body.length === 0 } }), 'request_headers');
    mutateRequest(ctx, c.header_mutation);
    if (c.status === CONTINUE_AND_REPLACE) {
      replaced = true;
      if (c.body_mutation) replaceRequestBody(ctx, mutateBody(body, c.body_mutation));
    }
  }
  if (replaced || body.length === 0 || !plan.events.has('RequestBody')) return;
  const next = await sendBody(call, 'request_body', body, plan.requestBodyMode, (c) => mutateRequest(ctx, c.header_mutation));
  if (next !== body && !next.equals(body)) replaceRequestBody(ctx, next);
}

/** The answer's head (`out`, changed in place) and its whole body; resolves with the body to send. */
export async function responseCallout(call: ExtprocCall, status: number, out: OutgoingHttpHeaders, body: Buffer, plan: CalloutPlan): Promise<Buffer> {
  if (plan.events.has('ResponseHeaders')) {
    const c = commonOf(await call.send({ response_headers: { headers: headerMap([[':status', String(status)]], out), end_of_stream: body.length === 0 } }), 'response_headers');
    mutateResponse(out, c.header_mutation);
    if (c.status === CONTINUE_AND_REPLACE) return mutateBody(body, c.body_mutation);
  }
  if (body.length === 0 || !plan.events.has('ResponseBody')) return body;
  return sendBody(call, 'response_body', body, plan.responseBodyMode, (c) => mutateResponse(out, c.header_mutation));
}
