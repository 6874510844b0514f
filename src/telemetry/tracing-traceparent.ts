// W3C Trace Context (traceparent, tracestate) read from a caller and written to the model server, without a global propagator.
import { createTraceState, isValidSpanId, isValidTraceId, TraceFlags, type SpanContext } from '@opentelemetry/api';

// version-traceid-parentid-flags; a future version may append fields, version 00 may not (W3C Trace Context §3.2).
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** The caller's span context, or undefined when the header is absent or malformed (then a new trace starts). */
export function parseTraceparent(traceparent: string | string[] | undefined, tracestate: string | string[] | undefined): SpanContext | undefined {
  if (typeof traceparent !== 'string') return undefined;
  const m = TRACEPARENT.exec(traceparent.trim());
  if (!m || m[1] === 'ff' || (m[1] === '00' && m[5] !== undefined)) return undefined;
  if (!isValidTraceId(m[2]) || !isValidSpanId(m[3])) return undefined;
  return {
    traceId: m[2],
    spanId: m[3],
    traceFlags: parseInt(m[4], 16) & TraceFlags.SAMPLED,
    isRemote: true,
    traceState: typeof tracestate === 'string' && tracestate !== '' ? createTraceState(tracestate) : undefined,
  };
}

export function formatTraceparent(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${sc.traceFlags & TraceFlags.SAMPLED ? '01' : '00'}`;
}
