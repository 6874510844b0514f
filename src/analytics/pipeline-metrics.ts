// The pipeline's Prometheus metrics, read from plain counters at scrape time so record() never touches prom-client.
import { Counter, Gauge, type Registry } from 'prom-client';

export const OUTCOMES = ['written', 'spooled', 'dropped'] as const;
export type Outcome = (typeof OUTCOMES)[number];
export const SPOOL_OPERATIONS = ['write', 'sync'] as const;
export type SpoolOperation = (typeof SPOOL_OPERATIONS)[number];

export interface PipelineReadings {
  /** Running totals since start; only ever grow. */
  readonly counts: Readonly<Record<Outcome, number>>;
  lagSeconds(): number;
  spooledRecords(): number;
  /** Running totals of failed spool writes (appends, new segment files) and fdatasyncs. */
  spoolErrors(): Readonly<Record<SpoolOperation, number>>;
}

/** A counter labelled by `label`, read from running totals at scrape time. */
function totalsCounter<K extends string>(registry: Registry, name: string, help: string, label: string, keys: readonly K[], read: () => Readonly<Record<K, number>>): void {
  const reported = Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
  const counter = new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      const totals = read();
      for (const key of keys) {
        const delta = totals[key] - reported[key];
        if (delta > 0) this.inc({ [label]: key }, delta);
        reported[key] += delta;
      }
    },
  });
  for (const key of keys) counter.inc({ [label]: key }, 0);
}

export function registerPipelineMetrics(registry: Registry, readings: PipelineReadings): void {
  const registers = [registry];
  totalsCounter(
    registry,
    'tollgate_analytics_records_total',
    'Analytics records by outcome: spooled (in the local write-ahead files), written (stored in the database), dropped (lost, and logged).',
    'outcome',
    OUTCOMES,
    () => readings.counts,
  );
  totalsCounter(
    registry,
    'tollgate_analytics_spool_errors_total',
    'Failed writes (appends, new segment files) and fdatasyncs of the analytics spool; while it cannot be written, records wait in memory for the database.',
    'operation',
    SPOOL_OPERATIONS,
    readings.spoolErrors,
  );
  new Gauge({
    name: 'tollgate_analytics_lag_seconds',
    help: 'Age of the oldest analytics record not yet stored in the database (0 when all are stored).',
    registers,
    collect() {
      this.set(readings.lagSeconds());
    },
  });
  new Gauge({
    name: 'tollgate_analytics_spooled_records',
    help: 'Analytics records waiting for the database: in the local write-ahead files, or in memory while those cannot be written.',
    registers,
    collect() {
      this.set(readings.spooledRecords());
    },
  });
}
