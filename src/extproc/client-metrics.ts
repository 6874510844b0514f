// tollgate_extproc_client_failures_total{extension,reason}: calls to an external ext_proc server that failed.
import { Counter, type Registry } from 'prom-client';
import type { FailureReason } from './client.js';

const NAME = 'tollgate_extproc_client_failures_total';

export type FailureCounter = (extension: string, reason: FailureReason) => void;

/** One counter per registry, shared by every extension registered in it. */
export function failureCounter(registry: Registry | undefined): FailureCounter {
  if (!registry) return () => {};
  const counter =
    (registry.getSingleMetric(NAME) as Counter<'extension' | 'reason'> | undefined) ??
    new Counter({ name: NAME, help: 'Calls to an external ext_proc server that failed (unavailable, timeout, error, invalid_response)', labelNames: ['extension', 'reason'], registers: [registry] });
  return (extension, reason) => counter.inc({ extension, reason });
}
