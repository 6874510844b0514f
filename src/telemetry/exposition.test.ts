// /metrics is rendered in slices: the page must stay the text prom-client writes, and the event loop must turn while it renders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { renderMetrics } from './exposition.js';
import { FastCounter, FastGauge, FastHistogram } from './fast-metrics.js';

const BUCKETS = Array.from({ length: 34 }, (_, i) => 0.001 * 2 ** (i / 2));

/** tollgate's fast metrics beside prom-client's own, with `models` × 2 series for each of the per-model metrics. */
function fleetRegistry(models: number): Registry {
  const registry = new Registry();
  const registers = [registry];
  const labelNames = ['model_name', 'target_model_name'];
  const total = new FastCounter({ name: 'x_request_total', help: 'Requests\\per "model"\nsecond line', labelNames, registers });
  const running = new FastGauge({ name: 'x_running', help: 'r', labelNames: ['model_name'], registers });
  const duration = new FastHistogram({ name: 'x_duration_seconds', help: 'd', labelNames, buckets: BUCKETS, registers });
  new FastCounter({ name: 'x_unused_total', help: 'never used', labelNames, registers });
  new FastCounter({ name: 'x_plain_total', help: 'no labels', labelNames: [], registers }).labels().inc(NaN);
  new FastHistogram({ name: 'x_plain_seconds', help: 'no labels', labelNames: [], buckets: [1], registers }).labels().observe(Infinity);
  new Counter({ name: 'y_total', help: 'prom-client', labelNames: ['a'], registers }).inc({ a: 'q"\\\n' });
  new Gauge({ name: 'y_gauge', help: 'collected', registers, collect() { this.set(-Infinity); } });
  new Histogram({ name: 'y_seconds', help: 'prom-client histogram', buckets: [0.5], registers }).observe(0.25);
  for (let m = 0; m < models; m++) {
    for (const target of [`m-${m}`, `lora-"${m}"\\\n`]) {
      total.labels(`m-${m}`, target).inc(m);
      const h = duration.labels(`m-${m}`, target);
      for (let i = 0; i < 5; i++) h.observe((m % 97) * 0.01 + i * 0.37);
    }
    running.labels(`m-${m}`).inc();
  }
  return registry;
}

test("the page is prom-client's text, byte for byte: escaping, label order, buckets, sum and count, empty metrics", async () => {
  const registry = fleetRegistry(50);
  assert.equal(String(await renderMetrics(registry)), await registry.metrics());
});

test('a big page is rendered in slices: timers fire while it renders, and concurrent renders each get the whole page', async () => {
  const registry = fleetRegistry(1000); // 2000 series of 37 lines each for the histogram
  const expected = await registry.metrics();
  // Slices of no time at all: a turn at every check, however fast the host (with 5 ms slices a fast one rendered this
  // page in two, and a 1 ms timer fired once).
  let turns = 0;
  let turning = true;
  const turn = (): void => {
    turns++;
    if (turning) setImmediate(turn);
  };
  setImmediate(turn);
  try {
    const pages = (await Promise.all([renderMetrics(registry, { sliceMs: 0 }), renderMetrics(registry, { sliceMs: 0 })])).map(String);
    // 2,000 histogram series are checked every 32: 62 turns or more for each render.
    assert.ok(turns >= 62, `the event loop turned ${turns} times while the page rendered`);
    assert.equal(pages[0], expected);
    assert.equal(pages[1], expected);
  } finally {
    turning = false;
  }
});
