// AnalyticsRecord: what one finished request leaves behind for analytics and monetization, and how it maps to a row.
import { clipName } from '../lib/clip-name.js';
import type { RequestContext } from '../gateway/context.js';
import type { AnalyticsRecordRow } from '../store/index.js';
import { newRecordId } from './record-id.js';

/** Who called, as the policy engine resolved it (all absent on a gateway without API management). */
export interface RequestIdentity {
  developerId?: string;
  developerEmail?: string;
  appId?: string;
  appName?: string;
  productName?: string;
  operationSet?: string;
  keyId?: string;
}

/** Absent fields were unknown (e.g. no usage reported); they are stored as NULL, never as 0. */
export interface AnalyticsRecord {
  /** UUIDv7 made by tollgate when the request finished; the unique key that makes replays exactly-once. */
  id: string;
  /** Arrival, epoch milliseconds. */
  time: number;
  /** The x-request-id (the client's or a generated one); not unique, since clients choose it. */
  requestId: string;
  developerId?: string;
  developerEmail?: string;
  appId?: string;
  appName?: string;
  product?: string;
  operationSet?: string;
  keyId?: string;
  operation?: string;
  model?: string;
  targetModel?: string;
  /** host:port of the model server that answered. */
  endpoint?: string;
  priority: number;
  status?: number;
  faultCode?: string;
  latencyMs: number;
  ttftMs?: number;
  inputTokens?: number;
  outputTokens?: number;
  cachedTokens?: number;
  /**
   * The tokens are tollgate's estimate, not the model server's usage: a stream that reached its client and ended
   * without its usage chunk (the prompt as tollgate counts it, the output tokens streamed). A token quota charged the same.
   */
  tokensEstimated: boolean;
  /** The id of the Responses API answer the model server stored, for follow-ups on other replicas (stored-responses.ts). */
  responseId?: string;
  cacheHit: boolean;
  stream: boolean;
  bytesIn: number;
  bytesOut: number;
}

function micros(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/**
 * The record for a request that has just finished (call it from the data plane's completion hook).
 * @example pipeline.record(recordFromContext(ctx, { appName: 'chatbot', productName: 'gold' }, false));
 */
export function recordFromContext(ctx: RequestContext, identity?: RequestIdentity, cacheHit: boolean = ctx.cacheHit === true): AnalyticsRecord {
  const now = Date.now();
  const elapsed = performance.now() - ctx.start;
  const usage = ctx.usage;
  return {
    id: newRecordId(now),
    time: Math.round(now - elapsed),
    requestId: ctx.id,
    developerId: identity?.developerId,
    developerEmail: identity?.developerEmail,
    appId: identity?.appId,
    appName: identity?.appName,
    product: identity?.productName,
    operationSet: identity?.operationSet,
    keyId: identity?.keyId,
    operation: ctx.operation,
    model: clipName(ctx.model),
    targetModel: clipName(ctx.targetModel),
    endpoint: ctx.endpoint?.address,
    priority: ctx.priority,
    status: ctx.status,
    faultCode: ctx.errorCode,
    latencyMs: micros(elapsed),
    ttftMs: ctx.ttftMs === undefined ? undefined : micros(ctx.ttftMs),
    inputTokens: usage?.inputTokens,
    outputTokens: usage?.outputTokens,
    // An estimate knows nothing of the server's prefix cache: unknown, not 0.
    cachedTokens: usage?.estimated ? undefined : usage?.cachedTokens,
    tokensEstimated: usage?.estimated === true,
    responseId: ctx.responseId,
    cacheHit,
    stream: ctx.stream,
    bytesIn: ctx.bytesIn,
    bytesOut: ctx.bytesOut,
  };
}

// Spooled lines are read back from disk, so every field is checked and coerced: a line that still parses but holds
// a wrong type (or a NUL, which PostgreSQL text refuses) must not become a batch the database rejects forever.
function text(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  return v.includes('\0') ? v.replaceAll('\0', '') : v;
}

function real(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function int(v: unknown): number | null {
  const n = real(v);
  return n === null ? null : Math.max(-Number.MAX_SAFE_INTEGER, Math.min(Number.MAX_SAFE_INTEGER, Math.trunc(n)));
}

/** The database row for a record parsed from a spool line; undefined when it lacks an id or a time. */
export function recordRow(r: Partial<Record<keyof AnalyticsRecord, unknown>>): AnalyticsRecordRow | undefined {
  const id = text(r.id);
  const at = int(r.time);
  if (!id || at === null) return undefined;
  const status = int(r.status);
  return {
    id,
    at_ms: at,
    request_id: text(r.requestId) ?? '',
    developer_id: text(r.developerId),
    developer_email: text(r.developerEmail),
    app_id: text(r.appId),
    app_name: text(r.appName),
    product: text(r.product),
    operation_set: text(r.operationSet),
    key_id: text(r.keyId),
    operation: text(r.operation),
    model: text(r.model),
    target_model: text(r.targetModel),
    endpoint: text(r.endpoint),
    priority: clampInt32(int(r.priority) ?? 0),
    status: status === null ? null : clampInt32(status),
    fault_code: text(r.faultCode),
    latency_ms: real(r.latencyMs) ?? 0,
    ttft_ms: real(r.ttftMs),
    input_tokens: int(r.inputTokens),
    output_tokens: int(r.outputTokens),
    cached_tokens: int(r.cachedTokens),
    tokens_estimated: r.tokensEstimated === true ? 1 : 0,
    response_id: text(r.responseId),
    cache_hit: r.cacheHit === true ? 1 : 0,
    stream: r.stream === true ? 1 : 0,
    bytes_in: int(r.bytesIn) ?? 0,
    bytes_out: int(r.bytesOut) ?? 0,
  };
}

/** priority and status are 32-bit integer columns on PostgreSQL. */
function clampInt32(n: number): number {
  return Math.max(-2147483648, Math.min(2147483647, n));
}
