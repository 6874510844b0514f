// An extension's answers applied the way Envoy applies them: header mutations (names lower-cased; pseudo-headers,
// host and framing headers left alone), body replacement, and immediate responses.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { RequestContext } from '../gateway/context.js';
import { parseOpenAIBody } from '../gateway/openai-request.js';
import { ExtprocCallError, STREAM_CLOSED } from './client.js';
import { ExtensionResponse } from './extension-response.js';
import { headerText } from './headers.js';
import { ADD_IF_ABSENT, OVERWRITE_IF_EXISTS, type BodyMutation, type CommonResponse, type HeaderMutation, type HeaderValueOption, type ProcessingResponse } from './messages.js';

/** Envoy ignores changes to these; tollgate frames the upstream request itself. */
const UNTOUCHABLE = new Set(['host', 'content-length', 'transfer-encoding', 'connection']);

/**
 * The answer's CommonResponse (none when the stream was closed cleanly: go on unchanged); throws ExtensionResponse for
 * an immediate response, ExtprocCallError for the wrong kind or a status no final HTTP answer has.
 */
export function commonOf(answer: ProcessingResponse, kind: 'request_headers' | 'request_body' | 'response_headers' | 'response_body'): CommonResponse {
  if (answer === STREAM_CLOSED) return {};
  const i = answer.immediate_response;
  if (i) {
    const status = i.status?.code || 500;
    if (status < 200 || status > 599) throw new ExtprocCallError('invalid_response', `the extension answered with status ${status}`);
    const headers: IncomingHttpHeaders = {};
    for (const o of i.headers?.set_headers ?? []) {
      const name = o.header.key.toLowerCase();
      // The data plane frames the answer it sends, as it frames a mutated one.
      if (!name.startsWith(':') && !UNTOUCHABLE.has(name)) headers[name] = headerText(o.header);
    }
    throw new ExtensionResponse(status, headers, i.body ?? Buffer.alloc(0), i.details);
  }
  if (answer.response !== kind) throw new ExtprocCallError('invalid_response', `the extension answered ${kind} with ${answer.response ?? 'nothing'}`);
  return answer[kind]?.response ?? {};
}

/** The value a set_headers entry leaves, or undefined when it leaves the header as it was. */
function nextValue(o: HeaderValueOption, prev: string | undefined): string | undefined {
  const v = headerText(o.header);
  if (v === '' && !o.keep_empty_value) return undefined;
  const action = o.append?.value === true ? -1 : (o.append_action ?? 0);
  if (action === ADD_IF_ABSENT) return prev === undefined ? v : undefined;
  if (action === OVERWRITE_IF_EXISTS) return prev === undefined ? undefined : v;
  // Unset `append` means overwrite for ext_proc (the proto's note), so only an explicit append appends.
  if (action === -1 && prev !== undefined) return `${prev}, ${v}`;
  return v;
}

function mutate(m: HeaderMutation | undefined, get: (name: string) => string | undefined, set: (name: string, v: string | null) => void): void {
  for (const raw of m?.remove_headers ?? []) {
    const name = raw.toLowerCase();
    if (!name.startsWith(':') && !UNTOUCHABLE.has(name)) set(name, null);
  }
  for (const o of m?.set_headers ?? []) {
    const name = o.header.key.toLowerCase();
    if (name.startsWith(':') || UNTOUCHABLE.has(name)) continue;
    const v = nextValue(o, get(name));
    if (v !== undefined) set(name, v);
  }
}

/** Request headers: what later stages read (ctx.headers) and what goes upstream (ctx.upstreamHeaders). */
export function mutateRequest(ctx: RequestContext, m: HeaderMutation | undefined): void {
  if (!m) return;
  let headers: IncomingHttpHeaders | null = null;
  mutate(
    m,
    (name) => {
      const v = ctx.upstreamHeaders?.[name];
      if (v !== undefined) return v ?? undefined;
      const h = ctx.headers[name];
      return Array.isArray(h) ? h.join(', ') : h;
    },
    (name, v) => {
      headers ??= ctx.headers = { ...ctx.headers };
      if (v === null) delete headers[name];
      else headers[name] = v;
      (ctx.upstreamHeaders ??= {})[name] = v;
    },
  );
}

/** Response headers the proxy is about to send. */
export function mutateResponse(out: OutgoingHttpHeaders, m: HeaderMutation | undefined): void {
  mutate(
    m,
    (name) => {
      const v = out[name];
      return v === undefined ? undefined : Array.isArray(v) ? v.join(', ') : String(v);
    },
    (name, v) => {
      if (v === null) delete out[name];
      else out[name] = v;
    },
  );
}

export function mutateBody(body: Buffer, m: BodyMutation | undefined): Buffer {
  if (!m) return body;
  if (m.clear_body) return Buffer.alloc(0);
  return m.body ?? body;
}

/** The extension changed the request body: what the rest of the request path reads is re-parsed from it. */
export function replaceRequestBody(ctx: RequestContext, raw: Buffer): void {
  ctx.rawBody = raw;
  ctx.bytesIn = raw.length;
  if (!ctx.operation) return;
  ctx.body = parseOpenAIBody(raw, ctx.operation);
  ctx.model = ctx.body.model;
  ctx.stream = ctx.body.stream === true;
}
