// deploy/grafana/tollgate.json: valid, on a Prometheus data-source variable, and querying only metrics tollgate exports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { registerPipelineMetrics } from '../src/analytics/pipeline-metrics.js';
import { RequestMetrics } from '../src/telemetry/request-metrics.js';
import { ApimMetrics } from '../src/telemetry/apim-metrics.js';
import { registerModelInfo } from '../src/telemetry/model-info.js';
import { SchedulerMetrics } from '../src/scheduler/metrics.js';
import { newContext } from '../src/gateway/data-plane.js';
import { loadConfig } from '../src/config/load.js';
import { poolAndModel } from './helpers/manifests.js';

/** What tollgate exports (names as registered; a histogram also answers to _bucket, _sum and _count). */
const EXPORTED: Record<string, 'counter' | 'gauge' | 'histogram'> = {
  inference_objective_request_total: 'counter',
  inference_objective_request_error_total: 'counter',
  inference_objective_request_duration_seconds: 'histogram',
  inference_objective_request_ttft_seconds: 'histogram',
  inference_objective_input_tokens: 'histogram',
  inference_objective_output_tokens: 'histogram',
  inference_objective_normalized_time_per_output_token_seconds: 'histogram',
  inference_objective_request_sizes: 'histogram',
  inference_objective_response_sizes: 'histogram',
  inference_objective_running_requests: 'gauge',
  inference_pool_average_queue_size: 'gauge',
  inference_pool_average_kv_cache_utilization: 'gauge',
  inference_pool_ready_pods: 'gauge',
  inference_extension_flow_control_queue_size: 'gauge',
  inference_extension_flow_control_request_queue_duration_seconds: 'histogram',
  inference_extension_scheduler_e2e_duration_seconds: 'histogram',
  inference_extension_scheduler_plugin_duration_seconds: 'histogram',
  inference_extension_prefix_indexer_hit_ratio: 'histogram',
  tollgate_policy_violations_total: 'counter',
  tollgate_requests_total: 'counter',
  tollgate_counter_store_errors_total: 'counter',
  tollgate_model_info: 'gauge',
  tollgate_pool_requests_total: 'counter',
  tollgate_pool_request_errors_total: 'counter',
  tollgate_pool_request_duration_seconds: 'histogram',
  tollgate_analytics_records_total: 'counter',
  tollgate_analytics_lag_seconds: 'gauge',
  tollgate_analytics_spooled_records: 'gauge',
  tollgate_analytics_spool_errors_total: 'counter',
};

/** What the issue asks the dashboard to show. */
const REQUIRED = [
  'inference_objective_request_total',
  'inference_objective_request_error_total',
  'inference_objective_request_duration_seconds',
  'inference_objective_request_ttft_seconds',
  'inference_objective_input_tokens',
  'inference_objective_output_tokens',
  'inference_pool_average_queue_size',
  'inference_pool_average_kv_cache_utilization',
  'inference_pool_ready_pods',
  'inference_extension_flow_control_queue_size',
  'tollgate_policy_violations_total',
  'tollgate_analytics_lag_seconds',
];

const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan']);

/** Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or grouping lists. */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  // Not after a digit: `5m` in `offset 5m` is a duration, not the metric `m`.
  for (const m of stripped.matchAll(/(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const rest = stripped.slice(m.index! + m[0].length).trimStart();
    if (!rest.startsWith('(') && !PROMQL_WORDS.has(m[0].toLowerCase())) names.push(m[0]);
  }
  return names;
}

/** `x_bucket` of a histogram `x` → `x`. */
function baseName(name: string): string {
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  return m && EXPORTED[m[1]] === 'histogram' ? m[1] : name;
}

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string; datasource?: { uid: string } }[];
}

const dashboard = JSON.parse(readFileSync(new URL('../deploy/grafana/tollgate.json', import.meta.url), 'utf8')) as {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: string | { query: string } }[] };
};

test('the extractor finds metric names, and only them', () => {
  assert.deepEqual(metricNames('histogram_quantile(0.99, sum by (le, model_name) (rate(a_bucket{model_name=~"$m", x="y"}[$__rate_interval])))'), ['a_bucket']);
  assert.deepEqual(metricNames('sum(rate(a_total[5m])) / on (pod) group_left (node) b and c offset 5m'), ['a_total', 'b', 'c']);
});

test('the dashboard is on a Prometheus data-source variable, with model and pool variables', () => {
  assert.equal(dashboard.uid, 'tollgate');
  const vars = new Map(dashboard.templating.list.map((v) => [v.name, v]));
  assert.equal(vars.get('datasource')?.type, 'datasource');
  assert.equal(vars.get('datasource')?.query, 'prometheus');
  assert.ok(vars.has('model') && vars.has('pool'));
  const ids = new Set<number>();
  for (const p of dashboard.panels) {
    assert.ok(!ids.has(p.id), `panel id ${p.id} is unique`);
    ids.add(p.id);
    assert.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits the 24-column grid`);
    if (p.type === 'row') continue;
    assert.equal(p.datasource?.uid, '${datasource}', p.title);
    assert.ok(p.targets && p.targets.length > 0, `${p.title} has queries`);
    for (const t of p.targets) assert.equal(t.datasource?.uid, '${datasource}', p.title);
  }
});

test('every metric the dashboard queries is one tollgate exports, and the required ones are all there', () => {
  const used = new Set<string>();
  for (const p of dashboard.panels) for (const t of p.targets ?? []) for (const name of metricNames(t.expr)) used.add(name);
  for (const v of dashboard.templating.list) {
    const query = typeof v.query === 'string' ? v.query : v.query.query;
    const m = /^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,/.exec(query);
    if (m) used.add(m[1]);
  }
  const unknown = [...used].filter((n) => !(baseName(n) in EXPORTED));
  assert.deepEqual(unknown, [], 'metrics the dashboard queries but tollgate does not export');
  const bases = new Set([...used].map(baseName));
  assert.deepEqual(REQUIRED.filter((n) => !bases.has(n)), [], 'required metrics missing from the dashboard');
  for (const n of used) if (n !== baseName(n)) assert.equal(EXPORTED[baseName(n)], 'histogram', `${n} is a histogram series`);
});

test('the list matches what the request metrics, the API-management metrics, the model info and the analytics pipeline register', async () => {
  const registry = new Registry();
  new RequestMetrics(registry);
  new ApimMetrics(registry);
  registerModelInfo(registry, () => loadConfig([], poolAndModel(['http://127.0.0.1:1'])));
  registerPipelineMetrics(registry, {
    counts: { written: 0, spooled: 0, dropped: 0 },
    lagSeconds: () => 0,
    spooledRecords: () => 0,
    spoolErrors: () => ({ write: 0, sync: 0 }),
  });
  for (const m of await registry.getMetricsAsJSON()) {
    // prom-client's typings say a numeric enum; at run time the type is the exposition-format string.
    const kind = String(m.type);
    const type = kind === 'histogram' ? 'histogram' : kind === 'gauge' ? 'gauge' : 'counter';
    assert.equal(EXPORTED[m.name], type, `${m.name} is listed as a ${type}`);
  }
});

test('a panel summed by pool reads series labelled by pool: joined to tollgate_model_info on the model, two pools serving one model matched many-to-many', async () => {
  const registry = new Registry();
  const config = loadConfig([], poolAndModel(['http://127.0.0.1:1']));
  const metrics = new RequestMetrics(registry);
  new ApimMetrics(registry);
  registerModelInfo(registry, () => config);
  new SchedulerMetrics(registry, () => [{ name: 'pool', averageKvCacheUsage: () => 0, averageQueueSize: () => 0, readyEndpoints: () => 1, queueLengths: () => [{ priority: 0, length: 1 }] }], () => 50);
  // One request, so that every request series has its labels on show.
  const ctx = Object.assign(newContext('POST', '/v1/chat/completions', {}, '127.0.0.1'), { model: 'm', targetModel: 'm', modelConfig: config.models.get('m')![0], status: 200 });
  metrics.started('m');
  metrics.finished(ctx, undefined);
  const labels = new Map<string, Set<string>>();
  for (const [, name, set] of (await registry.metrics()).matchAll(/^([a-zA-Z_:][\w:]*)\{([^}]*)\}/gm)) labels.set(name, new Set([...set.matchAll(/(\w+)="/g)].map((l) => l[1])));
  const byPool = dashboard.panels.flatMap((p) => (p.targets ?? []).filter((t) => /\bby\s*\([^)]*\bpool\b/.test(t.expr)).map((t) => ({ title: p.title, expr: t.expr })));
  assert.ok(byPool.length >= 4, 'the per-pool panels and the flow-control queue');
  for (const { title, expr } of byPool) for (const name of metricNames(expr)) assert.ok(labels.get(name)?.has('pool'), `${title}: ${name} carries no pool label`);
});
