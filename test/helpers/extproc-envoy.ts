// Plays Envoy's ext_proc filter for tests: drives one Process stream through the message sequence Envoy sends for
// the configured body modes, applies the answers as Envoy does (header and body mutations, immediate responses),
// forwards to the picked endpoint with undici, and runs the answer back through the stream.
import { request } from 'undici';
import { ExtprocClient, type ExtprocCall } from '../../src/extproc/client.js';
import type { CommonResponse, HeaderMap, HeaderMutation, ProcessingRequest, ProcessingResponse } from '../../src/extproc/messages.js';
import { fromStruct, toStruct } from '../../src/extproc/struct.js';

export type BodyMode = 'NONE' | 'BUFFERED' | 'STREAMED';

export interface EnvoyRequest {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  requestBodyMode?: BodyMode;
  /** STREAMED: the body's pieces, in order (default: the whole body as one chunk then an empty last one). */
  chunks?: Buffer[];
  responseBodyMode?: BodyMode;
  /** STREAMED responses are re-split into pieces of this many bytes (awkward places on purpose). */
  responseChunkBytes?: number;
  /** The subset hint (envoy.lb.subset_hint), when given. */
  subset?: string[];
  /** Header values as `value` strings instead of raw_value bytes (older Envoys). */
  stringValues?: boolean;
  /** Where to send the request when the answer names no destination (a policy-decision-point-only listener). */
  upstream?: string;
  /** Where to send the request whatever the destination says (one a test cannot reach, such as port 80). */
  connectTo?: string;
  /** Which endpoint to report as the one that served (default: the first of the destination). */
  served?: string;
}

export interface EnvoyResult {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** An immediate response: Envoy answered without forwarding. */
  local: boolean;
  /** x-gateway-destination-endpoint as the header and as envoy.lb metadata. */
  destination?: string;
  metadataDestination?: string;
  clearRouteCache: boolean;
  /** What the model server was sent. */
  upstream?: { url: string; path: string; headers: Record<string, string>; body: Buffer };
  answers: ProcessingResponse[];
}

const clients = new Map<string, ExtprocClient>();

export function envoyClient(address: string): ExtprocClient {
  let c = clients.get(address);
  if (!c) clients.set(address, (c = new ExtprocClient({ address })));
  return c;
}

export function closeEnvoyClients(): void {
  for (const c of clients.values()) c.close();
  clients.clear();
}

/**
 * Ends `call` as Envoy ends every ext_proc stream, whether the exchange is over or its client hung up: END_STREAM,
 * then RST_STREAM(CANCEL) at once (client_impl.cc close()).
 */
export function envoyEnd(call: ExtprocCall): void {
  call.end();
  call.cancel();
}

/** Envoy's two ways of ending a stream: its own, and a half-close alone (opt-in: ext_proc_graceful_grpc_close). */
export const ENVOY_ENDS: [how: string, end: (call: ExtprocCall) => void][] = [
  ['a half-close and a reset', envoyEnd],
  ['a half-close alone', (call) => call.end()],
];

export function headerMap(pairs: [string, string][], stringValues = false): HeaderMap {
  return { headers: pairs.map(([key, v]) => (stringValues ? { key, value: v } : { key, raw_value: Buffer.from(v, 'latin1') })) };
}

/** Envoy's view of headers: one map, lower-case names. */
export function applyMutation(headers: Map<string, string>, m: HeaderMutation | undefined): void {
  for (const name of m?.remove_headers ?? []) headers.delete(name.toLowerCase());
  for (const o of m?.set_headers ?? []) {
    const key = o.header.key.toLowerCase();
    const v = o.header.raw_value && o.header.raw_value.length > 0 ? o.header.raw_value.toString('latin1') : (o.header.value ?? '');
    const prev = headers.get(key);
    headers.set(key, o.append_action === 0 && prev !== undefined ? `${prev}, ${v}` : v);
  }
}

function common(a: ProcessingResponse): CommonResponse {
  const kind = a.response as keyof ProcessingResponse;
  return ((a[kind] as { response?: CommonResponse } | undefined)?.response ?? {}) as CommonResponse;
}

function local(answer: ProcessingResponse, answers: ProcessingResponse[]): EnvoyResult {
  const i = answer.immediate_response!;
  const headers = new Map<string, string>();
  applyMutation(headers, i.headers);
  return { status: i.status.code, headers: Object.fromEntries(headers), body: i.body ?? Buffer.alloc(0), local: true, clearRouteCache: false, answers };
}

function withBody(b: Buffer | undefined, m: CommonResponse['body_mutation']): Buffer | undefined {
  if (!m) return b;
  if (m.clear_body) return Buffer.alloc(0);
  return m.body ?? Buffer.alloc(0);
}

/**
 * A chat completion's request headers (`apiKey` as x-api-key, when given) and its whole body on `call`, as Envoy sends
 * them; resolves with tollgate's answer to the body (its decision, or an immediate response).
 */
export async function sendChatRequest(call: ExtprocCall, body: string, apiKey?: string): Promise<ProcessingResponse> {
  const headers: [string, string][] = [[':method', 'POST'], [':path', '/v1/chat/completions'], [':authority', 'gw'], [':scheme', 'http'], ['content-type', 'application/json']];
  if (apiKey !== undefined) headers.push(['x-api-key', apiKey]);
  await call.send({ request_headers: { headers: headerMap(headers), end_of_stream: false } });
  return call.send({ request_body: { body: Buffer.from(body), end_of_stream: true } });
}

/** One exchange through the ext_proc server at `address`, as Envoy would run it. */
export async function envoyExchange(address: string, r: EnvoyRequest): Promise<EnvoyResult> {
  const call = envoyClient(address).open(30_000);
  try {
    return await exchange(call, r);
  } finally {
    call.end();
  }
}

async function exchange(call: ExtprocCall, r: EnvoyRequest): Promise<EnvoyResult> {
  const answers: ProcessingResponse[] = [];
  const send = async (msg: ProcessingRequest) => {
    const a = await call.send(msg);
    answers.push(a);
    return a;
  };
  const method = r.method ?? (r.body === undefined ? 'GET' : 'POST');
  const body = r.body === undefined ? undefined : Buffer.from(r.body);
  const headers = new Map<string, string>([['host', 'gateway.example'], ...Object.entries(r.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v] as [string, string])]);
  if (body) headers.set('content-length', String(body.length));
  const metadata = r.subset && { metadata_context: { filter_metadata: { 'envoy.lb.subset_hint': toStruct({ 'x-gateway-destination-endpoint-subset': r.subset }) } } };
  const requestMode = r.requestBodyMode ?? 'BUFFERED';
  const pairs: [string, string][] = [[':method', method], [':path', r.path], [':authority', headers.get('host')!], [':scheme', 'http'], ...[...headers].filter(([k]) => k !== 'host')];
  let a = await send({ request_headers: { headers: headerMap(pairs, r.stringValues), end_of_stream: !body }, ...metadata });
  if (a.immediate_response) return local(a, answers);
  applyMutation(headers, common(a).header_mutation);
  let clearRouteCache = common(a).clear_route_cache === true;
  let dynamic = a.dynamic_metadata;
  let upstreamBody: Buffer | undefined = body;
  if (body && requestMode !== 'NONE') {
    if (requestMode === 'BUFFERED') {
      a = await send({ request_body: { body, end_of_stream: true } });
      if (a.immediate_response) return local(a, answers);
      // Header changes in a body answer count only in BUFFERED mode (the headers are still held).
      applyMutation(headers, common(a).header_mutation);
      upstreamBody = withBody(body, common(a).body_mutation);
      clearRouteCache ||= common(a).clear_route_cache === true;
      dynamic = a.dynamic_metadata ?? dynamic;
    } else {
      const chunks = r.chunks ?? [body, Buffer.alloc(0)];
      // Envoy streams every chunk without waiting, then applies each answer to its own chunk, in order.
      const pending = chunks.map((c, i) => send({ request_body: { body: c, end_of_stream: i === chunks.length - 1 } }));
      const out: Buffer[] = [];
      for (let i = 0; i < chunks.length; i++) {
        const ca = await pending[i];
        if (ca.immediate_response) {
          await Promise.allSettled(pending);
          return local(ca, answers);
        }
        out.push(withBody(chunks[i], common(ca).body_mutation)!);
        dynamic = ca.dynamic_metadata ?? dynamic;
        clearRouteCache ||= common(ca).clear_route_cache === true;
      }
      upstreamBody = Buffer.concat(out);
      headers.delete('content-length');
    }
  }
  const destination = headers.get('x-gateway-destination-endpoint');
  const lb = dynamic ? (fromStruct(dynamic)['envoy.lb'] as Record<string, string> | undefined) : undefined;
  const metadataDestination = lb?.['x-gateway-destination-endpoint'];
  const target = r.connectTo ?? (destination ? `http://${destination.split(',')[0]}` : r.upstream);
  if (!target) throw new Error('the ext_proc answer named no destination and the test gave no upstream');
  // A :path the answer set (a policy edited the query) is the one Envoy forwards.
  const path = headers.get(':path') ?? r.path;
  const upstreamHeaders = Object.fromEntries([...headers].filter(([k]) => k !== 'host' && k !== 'content-length' && !k.startsWith(':')));
  const res = await request(`${target}${path}`, { method: method as 'POST', headers: upstreamHeaders, body: upstreamBody });
  const served = r.served ?? destination?.split(',')[0];
  const responseHeaders = new Map<string, string>();
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) responseHeaders.set(k, Array.isArray(v) ? v.join(', ') : v);
  const responseMode = r.responseBodyMode ?? 'BUFFERED';
  const raw = Buffer.from(await res.body.arrayBuffer());
  const served_md = served ? { metadata_context: { filter_metadata: { 'envoy.lb': toStruct({ 'x-gateway-destination-endpoint-served': served }) } } } : {};
  const responsePairs: [string, string][] = [[':status', String(res.statusCode)], ...responseHeaders];
  a = await send({ response_headers: { headers: headerMap(responsePairs, r.stringValues), end_of_stream: raw.length === 0 }, ...served_md });
  const result = (status: number, b: Buffer): EnvoyResult => ({
    status,
    headers: Object.fromEntries(responseHeaders),
    body: b,
    local: false,
    destination,
    metadataDestination,
    clearRouteCache,
    upstream: { url: target, path, headers: upstreamHeaders, body: upstreamBody ?? Buffer.alloc(0) },
    answers,
  });
  if (a.immediate_response) return local(a, answers);
  applyMutation(responseHeaders, common(a).header_mutation);
  if (raw.length === 0 || responseMode === 'NONE') return result(res.statusCode, raw);
  if (responseMode === 'BUFFERED') {
    a = await send({ response_body: { body: raw, end_of_stream: true } });
    if (a.immediate_response) return local(a, answers);
    applyMutation(responseHeaders, common(a).header_mutation);
    return result(res.statusCode, withBody(raw, common(a).body_mutation)!);
  }
  const size = r.responseChunkBytes ?? 64 * 1024;
  const pieces: Buffer[] = [];
  for (let i = 0; i < raw.length; i += size) pieces.push(raw.subarray(i, i + size));
  const pending = pieces.map((c, i) => send({ response_body: { body: c, end_of_stream: i === pieces.length - 1 } }));
  const out: Buffer[] = [];
  for (let i = 0; i < pieces.length; i++) {
    const ca = await pending[i];
    if (ca.immediate_response) return local(ca, answers);
    out.push(withBody(pieces[i], common(ca).body_mutation)!);
  }
  return result(res.statusCode, Buffer.concat(out));
}
