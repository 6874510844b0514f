// tollgate_extproc_client_failures_total{extension,reason}: calls to an external ext_proc server that failed;
// tollgate_extproc_client_closed_streams_total{extension}: streams it closed cleanly early (tollgate went on without it).
import { Counter, type Registry } from 'prom-client';
import type { FailureReason } from './client.js';

export type FailureCounter = (extension: string, reason: FailureReason) => void;

/** One counter per registry, shared by every extension registered in it. */
function counterIn<L extends string>(registry: Registry, name: string, help: string, labelNames: L[]): Counter<L> {
  return (registry.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter({ name, help, labelNames, registers: [registry] });
}

export function failureCounter(registry: Registry | undefined): FailureCounter {
  if (!registry) return () => {};
  const counter = counterIn(registry, 'tollgate_extproc_client_failures_total', 'Calls to an external ext_proc server that failed (unavailable, timeout, error, invalid_response)', ['extension', 'reason']);
  return (extension, reason) => counter.inc({ extension, reason });
}

export function closeCounter(registry: Registry | undefined): (extension: string) => void {
  if (!registry) return () => {};
  const counter = counterIn(registry, 'tollgate_extproc_client_closed_streams_total', 'Streams an external ext_proc server closed cleanly before the request was over: tollgate went on without it', ['extension']);
  return (extension) => counter.inc({ extension });
}
