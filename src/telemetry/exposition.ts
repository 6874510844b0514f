// The /metrics page, rendered in slices of the event loop. prom-client's Registry.metrics() formats every series in
// one turn: with a thousand models that had traffic it is ~225k series and held every request ~2 s. Here each slice
// runs a few milliseconds and then yields a turn, so the data plane runs between slices. tollgate's fast metrics write
// their own text a series at a time; the others are formatted by prom-client, one metric a slice. Each slice encodes
// its own text, as sending a 24 MB string encodes it in one go (~100 ms measured).
import { setImmediate as loopTurn } from 'node:timers/promises';
import type { MetricObject, Registry } from 'prom-client';
import { LabelledMetric } from './fast-metrics.js';

/** How long a slice runs before the render yields a turn (by default). */
const SLICE_MS = 5;
/** Series written between two reads of the clock. */
const SERIES_PER_CHECK = 32;

/**
 * The registry's exposition: `registry.metrics()`'s text, UTF-8 encoded. Each call builds its own page, so concurrent
 * scrapes do not mix; a series is written whole, though series written in later slices may have moved on meanwhile
 * (as they would have between two scrapes).
 * @example res.end(await renderMetrics(registry));
 */
export async function renderMetrics(registry: Registry, { sliceMs = SLICE_MS } = {}): Promise<Buffer> {
  const encoded: Buffer[] = [];
  let text: string[] = [];
  let sliceStart = performance.now();
  const pause = async (): Promise<void> => {
    if (performance.now() - sliceStart < sliceMs) return;
    encoded.push(Buffer.from(text.join('')));
    text = [];
    await loopTurn();
    sliceStart = performance.now();
  };
  // The registry holds fast metrics too, which prom-client's types do not know of.
  for (const [i, metric] of (registry.getMetricsAsArray() as (MetricObject | LabelledMetric<unknown>)[]).entries()) {
    if (i > 0) text.push('\n\n');
    if (metric instanceof LabelledMetric) {
      let series = 0;
      for (const lines of metric.exposition()) {
        text.push(lines);
        if (++series % SERIES_PER_CHECK === 0) await pause();
      }
    } else {
      text.push(await registry.getSingleMetricAsString(metric.name));
    }
    await pause();
  }
  text.push('\n');
  encoded.push(Buffer.from(text.join('')));
  return Buffer.concat(encoded);
}
