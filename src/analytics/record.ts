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
 * The record for a request that has just finished, as its spool line holds it (recordLine is what the data plane
 * writes). `now` and `elapsed` are when it finished (epoch ms) and how long it took (ms).
 * @example recordFromContext(ctx, { appName: 'chatbot', productName: 'gold' }, false)
 */
export function recordFromContext(...args: Parameters<typeof recordLine>): AnalyticsRecord {
  return JSON.parse(recordLine(...args)) as AnalyticsRecord;
}

// What JSON.stringify escapes in a string (lone surrogates among them); names without any, nearly all, are only quoted.
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const ESCAPED = /[\u0000-\u001f"\\\ud800-\udfff]/;

// The fields of a spool line as JSON.stringify writes them: `key` is the `,"name":` before the value, and a field
// that is undefined is left out.
function str(key: string, s: string | undefined): string {
  if (s === undefined) return '';
  return typeof s === 'string' && !ESCAPED.test(s) ? key + '"' + s + '"' : key + JSON.stringify(s);
}

function num(key: string, n: number | undefined): string {
  return n === undefined ? '' : key + (Number.isFinite(n) ? n : 'null');
}

function bool(key: string, b: boolean | undefined): string {
  return b === undefined ? '' : key + b;
}

/**
 * The spool line (with its newline) of the request's record, byte for byte what JSON.stringify writes of it, in the
 * record's field order: on every request, without a record object or a generic stringify.
 * @example pipeline.recordRequest(ctx, identity) // appends recordLine(ctx, identity)
 */
export function recordLine(
  ctx: RequestContext,
  identity?: RequestIdentity,
  cacheHit: boolean = ctx.cacheHit === true,
  now = Date.now(),
  elapsed = performance.now() - ctx.start,
): string {
  const usage = ctx.usage;
  return (
    '{"id":"' +
    newRecordId(now) +
    '"' +
    num(',"time":', Math.round(now - elapsed)) +
    str(',"requestId":', ctx.id) +
    str(',"developerId":', identity?.developerId) +
    str(',"developerEmail":', identity?.developerEmail) +
    str(',"appId":', identity?.appId) +
    str(',"appName":', identity?.appName) +
    str(',"product":', identity?.productName) +
    str(',"operationSet":', identity?.operationSet) +
    str(',"keyId":', identity?.keyId) +
    // tollgate's own names, which need no escaping.
    (ctx.operation === undefined ? '' : ',"operation":"' + ctx.operation + '"') +
    str(',"model":', clipName(ctx.model)) +
    str(',"targetModel":', clipName(ctx.targetModel)) +
    str(',"endpoint":', ctx.endpoint?.address) +
    num(',"priority":', ctx.priority) +
    num(',"status":', ctx.status) +
    str(',"faultCode":', ctx.errorCode) +
    num(',"latencyMs":', micros(elapsed)) +
    num(',"ttftMs":', ctx.ttftMs === undefined ? undefined : micros(ctx.ttftMs)) +
    num(',"inputTokens":', usage?.inputTokens) +
    num(',"outputTokens":', usage?.outputTokens) +
    num(',"cachedTokens":', usage?.estimated ? undefined : usage?.cachedTokens) +
    bool(',"tokensEstimated":', usage?.estimated === true) +
    str(',"responseId":', ctx.responseId) +
    bool(',"cacheHit":', cacheHit) +
    bool(',"stream":', ctx.stream) +
    num(',"bytesIn":', ctx.bytesIn) +
    num(',"bytesOut":', ctx.bytesOut) +
    '}\n'
  );
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
