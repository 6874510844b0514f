// tollgate_extproc_client_failures_total{extension,reason}: calls to an external ext_proc server that failed;
// tollgate_extproc_client_closed_streams_total{extension}: streams it closed cleanly early (tollgate went on without it).
import { Counter, type Registry } from 'prom-client';
import type { FailureReason } from './client.js';

export type FailureCounter = (extension: string, reason: FailureReason) => void;

const FAILURES = 'tollgate_extproc_client_failures_total';
const CLOSED_STREAMS = 'tollgate_extproc_client_closed_streams_total';
/** Every FailureReason: prom-client removes a series by its whole label set. */
const REASONS = Object.keys({ unavailable: 0, timeout: 0, error: 0, invalid_response: 0 } satisfies Record<FailureReason, 0>);

/** One counter per registry, shared by every extension registered in it. */
function counterIn<L extends string>(registry: Registry, name: string, help: string, labelNames: L[]): Counter<L> {
  return (registry.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter({ name, help, labelNames, registers: [registry] });
}

export function failureCounter(registry: Registry | undefined): FailureCounter {
  if (!registry) return () => {};
  const counter = counterIn(registry, FAILURES, 'Calls to an external ext_proc server that failed (unavailable, timeout, error, invalid_response)', ['extension', 'reason']);
  return (extension, reason) => counter.inc({ extension, reason });
}

export function closeCounter(registry: Registry | undefined): (extension: string) => void {
  if (!registry) return () => {};
  const counter = counterIn(registry, CLOSED_STREAMS, 'Streams an external ext_proc server closed cleanly before the request was over: tollgate went on without it', ['extension']);
  return (extension) => counter.inc({ extension });
}

/** Removes the series of these extensions (a reload dropped them, and the requests that called them are over). */
export function forgetExtensions(registry: Registry, extensions: readonly string[]): void {
  const failures = registry.getSingleMetric(FAILURES) as Counter | undefined;
  const closed = registry.getSingleMetric(CLOSED_STREAMS) as Counter | undefined;
  for (const extension of extensions) {
    for (const reason of REASONS) failures?.remove({ extension, reason });
    closed?.remove({ extension });
  }
}
