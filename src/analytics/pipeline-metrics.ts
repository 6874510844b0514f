// The pipeline's Prometheus metrics, read from plain counters at scrape time so record() never touches prom-client.
import { Counter, Gauge, type Registry } from 'prom-client';

export const OUTCOMES = ['written', 'spooled', 'dropped'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export interface PipelineReadings {
  /** Running totals since start; only ever grow. */
  readonly counts: Readonly<Record<Outcome, number>>;
  lagSeconds(): number;
  spooledRecords(): number;
}

export function registerPipelineMetrics(registry: Registry, readings: PipelineReadings): void {
  const registers = [registry];
  const reported: Record<Outcome, number> = { written: 0, spooled: 0, dropped: 0 };
  const records = new Counter({
    name: 'tollgate_analytics_records_total',
    help: 'Analytics records by outcome: spooled (in the local write-ahead files), written (stored in the database), dropped (lost, and logged).',
    labelNames: ['outcome'],
    registers,
    collect() {
      for (const outcome of OUTCOMES) {
        const delta = readings.counts[outcome] - reported[outcome];
        if (delta > 0) this.inc({ outcome }, delta);
        reported[outcome] += delta;
      }
    },
  });
  for (const outcome of OUTCOMES) records.inc({ outcome }, 0);
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
    help: 'Analytics records waiting in the local write-ahead files for the database.',
    registers,
    collect() {
      this.set(readings.spooledRecords());
    },
  });
}
