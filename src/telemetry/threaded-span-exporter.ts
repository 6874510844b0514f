// A SpanExporter that hands finished spans to a worker thread, which serializes them to OTLP and sends them: the
// JSON encoding of every span was the largest part of what tracing cost the event loop.
import type { SpanContext } from '@opentelemetry/api';
import type { ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { spawnWorker } from '../lib/spawn-worker.js';
import type { ExportReply, ExportRequest, ExportWorkerData, PlainSpan, PlainSpanContext } from './span-export-protocol.js';

/** ExportResultCode.FAILED (an enum of @opentelemetry/core, which is not a direct dependency). */
const FAILED = 1;
/** shutdown() waits this long for the last export before terminating the thread. */
const SHUTDOWN_WAIT_MS = 5000;

function plainContext(c: SpanContext): PlainSpanContext {
  return { traceId: c.traceId, spanId: c.spanId, traceFlags: c.traceFlags, isRemote: c.isRemote, traceState: c.traceState?.serialize() };
}

function plainSpan(s: ReadableSpan): PlainSpan {
  return {
    name: s.name,
    kind: s.kind,
    context: plainContext(s.spanContext()),
    parent: s.parentSpanContext && plainContext(s.parentSpanContext),
    startTime: s.startTime,
    endTime: s.endTime,
    duration: s.duration,
    status: s.status,
    attributes: s.attributes,
    links: s.links.map((l) => ({ context: plainContext(l.context), attributes: l.attributes, droppedAttributesCount: l.droppedAttributesCount })),
    events: s.events,
    scope: s.instrumentationScope,
    droppedAttributesCount: s.droppedAttributesCount,
    droppedEventsCount: s.droppedEventsCount,
    droppedLinksCount: s.droppedLinksCount,
  };
}

export class ThreadedSpanExporter implements SpanExporter {
  readonly #worker: ReturnType<typeof spawnWorker>;
  readonly #waiting = new Map<number, (result: ExportResult) => void>();
  #seq = 0;
  #exited = false;

  constructor(url: string, headers: Record<string, string>) {
    this.#worker = spawnWorker(import.meta.url, 'span-export-worker', { workerData: { url, headers } satisfies ExportWorkerData });
    this.#worker.on('message', (reply: ExportReply) => {
      const done = this.#waiting.get(reply.seq);
      this.#waiting.delete(reply.seq);
      done?.({ code: reply.code, error: reply.error === undefined ? undefined : new Error(reply.error) });
    });
    // A failed thread fails its pending exports; the BatchSpanProcessor drops those spans, requests go on.
    this.#worker.on('error', () => {});
    this.#worker.on('exit', () => {
      this.#exited = true;
      for (const done of this.#waiting.values()) done({ code: FAILED, error: new Error('the span export thread exited') });
      this.#waiting.clear();
    });
    // The tracer shuts it down; a forgotten one must not keep the process alive. After the listeners: adding a
    // 'message' listener refs the worker's port again.
    this.#worker.unref();
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    if (spans.length === 0) return resultCallback({ code: 0 });
    this.#send({ type: 'export', seq: 0, resource: spans[0].resource.attributes, spans: spans.map(plainSpan) }, resultCallback);
  }

  forceFlush(): Promise<void> {
    return new Promise((resolve) => this.#send({ type: 'flush', seq: 0 }, () => resolve()));
  }

  async shutdown(): Promise<void> {
    if (this.#exited) return;
    const timer = setTimeout(() => void this.#worker.terminate(), SHUTDOWN_WAIT_MS);
    await new Promise<void>((resolve) => {
      this.#worker.once('exit', () => resolve());
      this.#send({ type: 'shutdown', seq: 0 }, () => {});
    });
    clearTimeout(timer);
  }

  #send(request: ExportRequest, done: (result: ExportResult) => void): void {
    if (this.#exited) return done({ code: FAILED, error: new Error('the span export thread has exited') });
    request.seq = ++this.#seq;
    this.#waiting.set(request.seq, done);
    this.#worker.postMessage(request);
  }
}
