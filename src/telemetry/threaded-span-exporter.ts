// A SpanExporter that hands finished spans to a worker thread (flattened: span-flat.ts), which serializes them to
// OTLP and sends them: the JSON encoding of every span was the largest part of what tracing cost the event loop.
import type { ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { spawnWorker } from '../lib/spawn-worker.js';
import { WorkerCalls } from '../lib/worker-calls.js';
import type { ExportAnswer, ExportRequest, ExportWorkerData } from './span-export-protocol.js';
import { flattenSpans } from './span-flat.js';

/** ExportResultCode.FAILED (an enum of @opentelemetry/core, which is not a direct dependency). */
const FAILED = 1;
/** shutdown() waits this long for the last export before terminating the thread. */
const SHUTDOWN_WAIT_MS = 5000;

export class ThreadedSpanExporter implements SpanExporter {
  readonly #calls: WorkerCalls<ExportRequest, ExportAnswer>;

  constructor(url: string, headers: Record<string, string>) {
    // A failed thread fails its pending exports; the BatchSpanProcessor drops those spans, requests go on.
    this.#calls = new WorkerCalls(spawnWorker(import.meta.url, 'span-export-worker', { workerData: { url, headers } satisfies ExportWorkerData }), { name: 'span export' });
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    if (spans.length === 0) return resultCallback({ code: 0 });
    this.#calls.call({ type: 'export', resource: spans[0].resource.attributes, spans: flattenSpans(spans) }).then(
      (answer) => resultCallback({ code: answer.code, error: answer.error === undefined ? undefined : new Error(answer.error) }),
      (err: Error) => resultCallback({ code: FAILED, error: err }),
    );
  }

  /** Resolves once what the thread holds is sent, or could not be (the spans are then lost, as a failed export's). */
  forceFlush(): Promise<void> {
    return this.#calls.call({ type: 'flush' }).then(
      () => {},
      () => {},
    );
  }

  shutdown(): Promise<void> {
    return this.#calls.close({ type: 'shutdown' }, SHUTDOWN_WAIT_MS);
  }
}
