// The span export thread: turns finished spans back into the SDK's ReadableSpan shape and exports them with the
// OTLP/HTTP exporter, so serializing and sending traces does not take the event loop that serves requests.
import { parentPort, workerData } from 'node:worker_threads';
import { createTraceState, type SpanContext } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Numbered } from '../lib/worker-calls.js';
import type { ExportAnswer, ExportRequest, ExportWorkerData, PlainSpan, PlainSpanContext } from './span-export-protocol.js';
import { unflattenSpans } from './span-flat.js';

const port = parentPort!;
const data = workerData as ExportWorkerData;
const exporter = new OTLPTraceExporter({ url: data.url, headers: data.headers });
const post = (answer: ExportAnswer): void => port.postMessage(answer);

function context(c: PlainSpanContext): SpanContext {
  return { traceId: c.traceId, spanId: c.spanId, traceFlags: c.traceFlags, isRemote: c.isRemote, traceState: c.traceState === undefined ? undefined : createTraceState(c.traceState) };
}

function readable(s: PlainSpan, resource: Resource): ReadableSpan {
  const own = context(s.context);
  return {
    name: s.name,
    kind: s.kind,
    spanContext: () => own,
    parentSpanContext: s.parent && context(s.parent),
    startTime: s.startTime,
    endTime: s.endTime,
    duration: s.duration,
    ended: true,
    status: s.status,
    attributes: s.attributes,
    links: s.links.map((l) => ({ ...l, context: context(l.context) })),
    events: s.events,
    resource,
    instrumentationScope: s.scope,
    droppedAttributesCount: s.droppedAttributesCount,
    droppedEventsCount: s.droppedEventsCount,
    droppedLinksCount: s.droppedLinksCount,
  };
}

const fail = (seq: number, err: unknown): void => post({ type: 'done', seq, code: 1, error: err instanceof Error ? err.message : String(err) });

// Export and flush come numbered by WorkerCalls; shutdown does not (nothing answers it: the thread exits).
port.on('message', (request: Numbered<Exclude<ExportRequest, { type: 'shutdown' }>> | Extract<ExportRequest, { type: 'shutdown' }>) => {
  if (request.type === 'shutdown') {
    // A last export that fails costs those spans; the thread exits either way.
    void exporter.shutdown().catch(() => {}).finally(() => port.close());
    return;
  }
  const { seq } = request;
  if (request.type === 'export') {
    try {
      const resource = resourceFromAttributes(request.resource);
      exporter.export(unflattenSpans(request.spans).map((s) => readable(s, resource)), (result) => post({ type: 'done', seq, code: result.code, error: result.error?.message }));
    } catch (err) {
      fail(seq, err);
    }
  } else {
    exporter.forceFlush().then(() => post({ type: 'done', seq, code: 0 }), (err) => fail(seq, err));
  }
});
