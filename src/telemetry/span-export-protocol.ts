// Messages between the tracer and its export thread, and the plain form a finished span crosses the boundary in
// (class instances and functions do not survive structured clone; trace state travels serialized).
import type { Attributes, HrTime, SpanKind, SpanStatus } from '@opentelemetry/api';

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

/** `resource`: the attributes of the spans' resource (one per tracer provider, so one per batch). */
export type ExportRequest = { type: 'export'; seq: number; resource: Attributes; spans: PlainSpan[] } | { type: 'flush'; seq: number } | { type: 'shutdown'; seq: number };

/** `code` is OpenTelemetry's ExportResultCode (0 success, 1 failed). */
export type ExportReply = { type: 'done'; seq: number; code: number; error?: string };
