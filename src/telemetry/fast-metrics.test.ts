import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { FastCounter, FastGauge, FastHistogram } from './fast-metrics.js';

test('renders through a prom-client registry in the exposition format', async () => {
  const registry = new Registry();
  const c = new FastCounter({ name: 'x_total', help: 'x', labelNames: ['a'], registers: [registry] });
  const g = new FastGauge({ name: 'x_running', help: 'r', labelNames: ['a'], registers: [registry] });
  const h = new FastHistogram({ name: 'x_seconds', help: 'h', labelNames: ['a', 'b'], buckets: [1, 0.1], registers: [registry] });
  c.labels('p').inc();
  c.labels('p').inc(2);
  g.labels('p').inc();
  g.labels('p').dec();
  const s = h.labels('p', 'q');
  for (const v of [0.05, 0.1, 0.5, 3]) s.observe(v);
  const text = await registry.metrics();
  assert.match(text, /# TYPE x_total counter\nx_total\{a="p"\} 3/);
  assert.match(text, /# TYPE x_running gauge\nx_running\{a="p"\} 0/);
  assert.match(text, /x_seconds_bucket\{a="p",b="q",le="0.1"\} 2\n/);
  assert.match(text, /x_seconds_bucket\{a="p",b="q",le="1"\} 3\n/);
  assert.match(text, /x_seconds_bucket\{a="p",b="q",le="\+Inf"\} 4\n/);
  assert.match(text, /x_seconds_sum\{a="p",b="q"\} 3.65\n/);
  assert.match(text, /x_seconds_count\{a="p",b="q"\} 4/);
});

test('removeWhere drops the series it picks from the exposition; the same labels used again start a new one', async () => {
  const registry = new Registry();
  const h = new FastHistogram({ name: 'x_seconds', help: 'h', labelNames: ['a', 'b'], buckets: [1], registers: [registry] });
  const c = new FastCounter({ name: 'y_total', help: 'y', labelNames: ['a'], registers: [registry] });
  for (const [a, b] of [['gone', 'q'], ['gone', 'r'], ['kept', 'q']]) h.labels(a, b).observe(0.5);
  const gone = c.labels('gone');
  gone.inc(5);
  c.labels('kept').inc();
  h.removeWhere(([a, b]) => a === 'gone' && b === 'q');
  c.removeWhere(([a]) => a === 'gone');
  const text = await registry.metrics();
  assert.doesNotMatch(text, /a="gone",b="q"/);
  assert.match(text, /x_seconds_count\{a="gone",b="r"\} 1/);
  assert.match(text, /x_seconds_count\{a="kept",b="q"\} 1/);
  assert.doesNotMatch(text, /y_total\{a="gone"\}/);
  assert.match(text, /y_total\{a="kept"\} 1/);
  assert.notEqual(c.labels('gone'), gone);
  assert.equal(c.labels('gone').value, 0);
  h.removeWhere(() => true);
  assert.doesNotMatch(await registry.metrics(), /x_seconds_count\{/);
});
