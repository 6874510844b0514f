// The stats query parser: defaults, lists, filters, and a field path for every mistake.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dimensionColumns, parseStatsQuery } from './stats-query.js';

const NOW = Date.UTC(2025, 5, 1, 12, 0, 0);
const parse = (q: string) => parseStatsQuery(new URLSearchParams(q), NOW);

test('defaults: the last 24 hours, hourly buckets, requests, json', () => {
  assert.deepEqual(parse(''), {
    query: { from: NOW - 86_400_000, to: NOW, bucket: '1h', offsetMinutes: 0, groupBy: [], metrics: ['requests'], filters: [], format: 'json' },
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
    { field: 'product', op: '==', value: 'gold' },
    { field: 'status', op: '!=', value: 200 },
    { field: 'app', op: '==', value: null },
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
    ['filter=model==a;status==2xx', ['filter[1]']],
    ['pageSize=10', ['pageSize']],
  ];
  for (const [q, paths] of cases) {
    const r = parse(q);
    assert.ok('problems' in r, q);
    assert.deepEqual(r.problems.map((p) => p.path), paths, q);
  }
});

test('a range of any number of buckets is a query: only the rows an answer would hold are limited (stats-sql)', () => {
  const r = parse('bucket=1m&from=2025-01-01T00:00:00Z');
  assert.ok('query' in r);
  assert.equal(r.query.bucket, '1m');
});

test('times: strict ISO-8601 with a zone, or signed epoch milliseconds', () => {
  const accepted: [string, number][] = [
    ['2025-06-01T10:00:00Z', Date.UTC(2025, 5, 1, 10)],
    ['2025-06-01T10:00Z', Date.UTC(2025, 5, 1, 10)],
    ['2025-06-01T12:30:00+02:30', Date.UTC(2025, 5, 1, 10)],
    ['2025-06-01T08:00:00.5-02:00', Date.UTC(2025, 5, 1, 10, 0, 0, 500)],
    ['2025-06-01T10:00:00.123456789Z', Date.UTC(2025, 5, 1, 10, 0, 0, 123)],
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
    ['0001-01-01T00:00:00Z', -62135596800000],
    ['-000001-01-01T00:00:00Z', -62198755200000],
    ['+275760-09-13T00:00:00Z', 8.64e15],
    ['1748772000000', Date.UTC(2025, 5, 1, 10)],
    ['-5', -5],
    ['+5', 5],
  ];
  for (const [text, ms] of accepted) {
    const r = parseStatsQuery(new URLSearchParams({ from: text, to: text }), NOW);
    assert.ok('query' in r, text);
    assert.equal(r.query.from, ms, text);
  }
  const refused = [
    '2025-02-30T00:00:00Z', '2025-13-01T00:00:00Z', '2025-02-29T00:00:00Z', '2025-06-01T24:00:00Z', '2025-06-01T10:60:00Z',
    '2025-06-01T10:00:60Z', '2025-06-01T10:00:00+24:00', '2025-06-01T10:00:00', '2025-06-01', 'June 1, 2025', 'Sun, 01 Jun 2025 10:00:00 GMT',
    '2025-06-01 10:00:00Z', '2025-06', ' 123', '1.5', '1e3', '0x10', '1,2', '-000000-01-01T00:00:00Z', '+275760-09-13T00:00:01Z', '8640000000000001',
  ];
  for (const text of refused) {
    const r = parseStatsQuery(new URLSearchParams({ to: text }), NOW);
    assert.ok('problems' in r, text);
    assert.deepEqual(r.problems.map((p) => p.path), ['to'], text);
  }
});

test('filter values are kept as given; \\; writes a ; and each filter parameter is parsed apart', () => {
  const filtersOf = (params: [string, string][]) => {
    const r = parseStatsQuery(new URLSearchParams(params), NOW);
    assert.ok('query' in r, JSON.stringify(params));
    return r.query.filters;
  };
  assert.deepEqual(filtersOf([['filter', ' model == llama ;product!= ']]), [
    { field: 'model', op: '==', value: ' llama ' },
    { field: 'product', op: '!=', value: ' ' },
  ]);
  // A backslash ending one parameter escapes nothing in the next.
  assert.deepEqual(filtersOf([['filter', 'model==a\\;b;product==c\\\\'], ['filter', 'model==x\\'], ['filter', 'model==two\nlines']]), [
    { field: 'model', op: '==', value: 'a;b' },
    { field: 'product', op: '==', value: 'c\\' },
    { field: 'model', op: '==', value: 'x\\' },
    { field: 'model', op: '==', value: 'two\nlines' },
  ]);
  const r = parseStatsQuery(new URLSearchParams([['filter', 'model==a;'], ['filter', 'planet==x']]), NOW);
  assert.ok('problems' in r);
  assert.deepEqual(r.problems.map((p) => p.path), ['filter[1]']);
});

test('an app name picks one app only with its developer beside it; an app id or no app needs none', () => {
  const accepted = [
    'filter=developer==ada@example.com;app==chatbot',
    'filter=app!=chatbot&filter=developer_id==d-1',
    'filter=app_id==a-1',
    'filter=developer_id==d-1',
    'filter=app==',
  ];
  for (const q of accepted) assert.ok('query' in parse(q), q);
  const refused: [string, string[]][] = [
    ['filter=app==chatbot', ['filter[0]']],
    ['filter=model==llama;app!=chatbot', ['filter[1]']],
    // Neither names one developer: every other developer, or records without one.
    ['filter=developer!=ada@example.com;app==chatbot', ['filter[1]']],
    ['filter=developer==;app==chatbot', ['filter[1]']],
  ];
  for (const [q, paths] of refused) {
    const r = parse(q);
    assert.ok('problems' in r, q);
    assert.deepEqual(r.problems.map((p) => p.path), paths, q);
    assert.match(r.problems[0].message, /^app names are unique only per developer: add developer==<email> \(or developer_id==<id>\), or pick the app by app_id==<id>$/);
  }
});

test('an app or a developer is shown by name and id; other dimensions by their value', () => {
  assert.deepEqual(dimensionColumns(['model', 'app', 'developer', 'status']), ['model', 'app', 'app_id', 'developer', 'developer_id', 'status']);
  assert.deepEqual(dimensionColumns([]), []);
});
