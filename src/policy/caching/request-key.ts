// The exact-match key of a request: the operation, the requested and target models, the upstream it goes to, the query
// string and every body field that can change the answer, as canonical JSON, hashed (keys never carry prompt text into
// a shared store).
import { createHash } from 'node:crypto';
import { serializeBody } from '../../gateway/body-serialize.js';
import { queryOf, upstreamUrl, type RequestContext } from '../../gateway/context.js';
import type { OpenAIBody } from '../../gateway/openai-request.js';
import { canonicalJson } from './canonical-json.js';

/**
 * Fields that never change the answer's content. Everything else counts (temperature, top_p, max_tokens, tools,
 * response_format, seed, n, stop, ...), so a field unknown today errs on the side of a miss.
 */
const NOT_KEYED = new Set(['model', 'stream', 'stream_options', 'user', 'metadata', 'store', 'service_tier']);

export function requestKey(ctx: RequestContext): string {
  const body = ctx.body as OpenAIBody;
  const keyed: Record<string, unknown> = {};
  for (const k in body) if (!NOT_KEYED.has(k)) keyed[k] = body[k];
  const request = canonicalJson({ op: ctx.operation, model: ctx.model, target: ctx.targetModel ?? ctx.model, upstream: upstreamOf(ctx), query: forwardedQuery(ctx) });
  // The body with its integers as the client wrote them: seeds 4611686018427387904 and ...905 are one double, and the
  // model server (which gets the digits) samples each its own way.
  return createHash('sha256').update(request).update('\n').update(serializeBody(keyed, ctx.rawBody, canonicalJson)).digest('base64url');
}

/**
 * Where the request goes: an HTTPRoute's URL backend, or the InferencePool that serves it (a route's, or its model's).
 * Routes may send the same request to different servers (by header, by hostname), whose answers are not each other's.
 */
export function upstreamOf(ctx: RequestContext): string | undefined {
  const backend = ctx.backend;
  if (backend?.kind === 'url') return `url ${backend.url}`;
  const pool = backend?.pool ?? ctx.modelConfig?.pool;
  return pool && `pool ${pool.name}`;
}

/**
 * The query string the model server gets (without parameters withheld from it, a credential read from one), in sorted
 * order; undefined when there is none. It may change the answer (Azure's `api-version`), and HTTP caches key on the
 * whole request target (RFC 9111 §2).
 */
export function forwardedQuery(ctx: RequestContext): string | undefined {
  if (!ctx.url.includes('?')) return undefined;
  const params = queryOf(upstreamUrl(ctx));
  params.sort();
  return params.toString() || undefined;
}

/**
 * Whether the same request gets the same answer: greedy sampling (temperature 0) or a fixed seed; embeddings always.
 * Without temperature the servers' default (1) applies, which samples.
 */
export function isDeterministic(ctx: RequestContext): boolean {
  if (ctx.operation === 'embeddings') return true;
  const body = ctx.body as OpenAIBody;
  return body.temperature === 0 || (typeof body.seed === 'number' && Number.isInteger(body.seed));
}
