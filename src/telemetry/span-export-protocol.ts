// Messages between the tracer and its export thread, and the plain form a finished span takes again on the other
// side (it crosses flattened, span-flat.ts; trace state travels serialized).
import type { Attributes, HrTime, SpanKind, SpanStatus } from '@opentelemetry/api';
import type { FlatSpans } from './span-flat.js';

export interface PlainSpanContext {
  traceId: string;
  spanId: string;
  traceFlags: number;
  isRemote?: boolean;
  traceState?: string;
}

export interface PlainSpan {
  name: string;
  kind: SpanKind;
  context: PlainSpanContext;
  parent?: PlainSpanContext;
  startTime: HrTime;
  endTime: HrTime;
  duration: HrTime;
  status: SpanStatus;
  attributes: Attributes;
  links: { context: PlainSpanContext; attributes?: Attributes; droppedAttributesCount?: number }[];
  events: { name: string; time: HrTime; attributes?: Attributes; droppedAttributesCount?: number }[];
  scope: { name: string; version?: string; schemaUrl?: string };
  droppedAttributesCount: number;
  droppedEventsCount: number;
  droppedLinksCount: number;
}

export interface ExportWorkerData {
  url: string;
  headers: Record<string, string>;
}

/**
 * `resource`: the attributes of the spans' resource (one per tracer provider, so one per batch). WorkerCalls numbers
 * export and flush; shutdown is not answered (the thread exits).
 */
export type ExportRequest = { type: 'export'; resource: Attributes; spans: FlatSpans } | { type: 'flush' } | { type: 'shutdown' };

/** `code` is OpenTelemetry's ExportResultCode (0 success, 1 failed). */
export type ExportAnswer = { type: 'done'; seq: number; code: number; error?: string };
