// The stats query parser: defaults, lists, filters, and a field path for every mistake.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStatsQuery } from './stats-query.js';

const NOW = Date.UTC(2025, 5, 1, 12, 0, 0);
const parse = (q: string) => parseStatsQuery(new URLSearchParams(q), NOW);

test('defaults: the last 24 hours, hourly buckets, requests, json', () => {
  assert.deepEqual(parse(''), {
    query: { from: NOW - 86_400_000, to: NOW, bucket: '1h', groupBy: [], metrics: ['requests'], filters: [], format: 'json' },
  });
});

test('lists, filters and times', () => {
  const r = parse('from=2025-06-01T00:00:00Z&to=1748779200000&bucket=1m&groupBy=app, model&metrics=requests,latency_p99&filter=product==gold;status!=200&filter=app==');
  assert.ok('query' in r);
  assert.equal(r.query.from, Date.UTC(2025, 5, 1));
  assert.equal(r.query.to, 1748779200000);
  assert.deepEqual(r.query.groupBy, ['app', 'model']);
  assert.deepEqual(r.query.metrics, ['requests', 'latency_p99']);
  assert.deepEqual(r.query.filters, [
    { dimension: 'product', op: '==', value: 'gold' },
    { dimension: 'status', op: '!=', value: 200 },
    { dimension: 'app', op: '==', value: null },
  ]);
});

test('each mistake is reported with its parameter path', () => {
  const cases: [string, string[]][] = [
    ['metrics=requests,p50', ['metrics[1]']],
    ['metrics=', ['metrics']],
    ['groupBy=app,app', ['groupBy']],
    ['groupBy=app,planet', ['groupBy[1]']],
    ['bucket=1w', ['bucket']],
    ['format=xml', ['format']],
    ['from=2025-06-02T00:00:00Z', ['from']],
    ['to=tomorrow', ['to']],
    ['filter=app=chatbot', ['filter[0]']],
    ['filter=app==a;status==2xx', ['filter[1]']],
    ['bucket=1m&from=2025-01-01T00:00:00Z', ['bucket']],
    ['pageSize=10', ['pageSize']],
  ];
  for (const [q, paths] of cases) {
    const r = parse(q);
    assert.ok('problems' in r, q);
    assert.deepEqual(r.problems.map((p) => p.path), paths, q);
  }
});
