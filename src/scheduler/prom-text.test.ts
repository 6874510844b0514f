import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_SAMPLES_PER_SERIES, samplesOf, seriesOf } from './prom-text.js';

describe('samplesOf', () => {
  const page = [
    '# HELP vllm:num_requests_waiting Number of requests waiting.',
    '# TYPE vllm:num_requests_waiting gauge',
    'vllm:num_requests_waiting{engine="0",model_name="m"} 3.0',
    'vllm:num_requests_waiting{engine="1",model_name="m"} 2',
    'vllm:num_requests_waiting_by_reason{reason="capacity"} 9',
    'vllm:num_requests_running 7 1700000000000',
    'vllm:lora_requests_info{max_lora="2",running_lora_adapters="a,b",waiting_lora_adapters=""} 1.7e9',
    'weird{msg="say \\"hi\\"\\nthere, {ok}"} +Inf',
    'broken{no_quote=1} 5',
    'unclosed{a="x} 5',
    'next_line{b="y"} 6',
    'backslashes{path="C:\\\\dir\\\\",q="\\\\\\""} 1',
    'nan_metric NaN',
    'crlf_metric 4\r',
  ].join('\n');

  const cases: { name: string; want: { labels: Record<string, string>; value: number }[] }[] = [
    {
      name: 'vllm:num_requests_waiting',
      want: [
        { labels: { engine: '0', model_name: 'm' }, value: 3 },
        { labels: { engine: '1', model_name: 'm' }, value: 2 },
      ],
    },
    { name: 'vllm:num_requests_running', want: [{ labels: {}, value: 7 }] },
    {
      name: 'vllm:lora_requests_info',
      want: [{ labels: { max_lora: '2', running_lora_adapters: 'a,b', waiting_lora_adapters: '' }, value: 1.7e9 }],
    },
    { name: 'weird', want: [{ labels: { msg: 'say "hi"\nthere, {ok}' }, value: Infinity }] },
    { name: 'broken', want: [] },
    // The value's closing quote is looked for on its own line only.
    { name: 'unclosed', want: [] },
    { name: 'next_line', want: [{ labels: { b: 'y' }, value: 6 }] },
    { name: 'backslashes', want: [{ labels: { path: 'C:\\dir\\', q: '\\"' }, value: 1 }] },
    { name: 'absent', want: [] },
    { name: 'crlf_metric', want: [{ labels: {}, value: 4 }] },
  ];
  for (const c of cases) {
    test(c.name, () => assert.deepEqual(samplesOf(page, c.name), c.want));
  }

  test('NaN values are kept as NaN', () => {
    const [s] = samplesOf(page, 'nan_metric');
    assert.ok(Number.isNaN(s.value));
  });

  test('a name inside a comment or as a prefix of a longer name does not match', () => {
    assert.equal(samplesOf(page, 'vllm:num_requests').length, 0);
    assert.equal(samplesOf('# vllm:x 1\nvllm:x 2', 'vllm:x')[0].value, 2);
  });

  test('the first line of the page matches', () => {
    assert.deepEqual(samplesOf('m 1\nm{a="b"} 2', 'm'), [
      { labels: {}, value: 1 },
      { labels: { a: 'b' }, value: 2 },
    ]);
  });

  test('seriesOf reads several names in one pass, each as samplesOf would', () => {
    const names = ['vllm:num_requests_waiting', 'vllm:num_requests_running', 'weird', 'absent'];
    const series = seriesOf(page, names);
    assert.deepEqual([...series.keys()], names);
    for (const name of names) assert.deepEqual(series.get(name), samplesOf(page, name));
  });
});

describe('a page of many samples of one series', () => {
  test(`at most ${MAX_SAMPLES_PER_SERIES} samples of a series are read, malformed lines included; other series still are`, () => {
    const ranks = (n: number, line: (i: number) => string) => Array.from({ length: n }, (_, i) => line(i)).join('\n');
    const page = `${ranks(5000, (i) => `w{engine="${i}"} 1`)}\nr 7\n`;
    const series = seriesOf(page, ['w', 'r']);
    // Before: all 5000 were read, a labels object each (a 3.9 MiB page of them held the event loop 40-50 ms a scrape).
    assert.equal(series.get('w')!.length, MAX_SAMPLES_PER_SERIES);
    assert.deepEqual(series.get('r'), [{ labels: {}, value: 7 }]);
    const broken = `${ranks(MAX_SAMPLES_PER_SERIES, () => 'w{engine=0} 1')}\nw 2\n`;
    assert.deepEqual(seriesOf(broken, ['w']).get('w'), []);
  });
});

describe('a series read for its newest sample (seriesOf `newest`)', () => {
  const info = (running: string, value: string) => `info{max_lora="1",running_lora_adapters="${running}"} ${value}`;
  const lines = (n: number, line: (i: number) => string) => Array.from({ length: n }, (_, i) => line(i)).join('\n');

  test('the sample of greatest value, from every line however many, wherever it is on the page', () => {
    // As a long-running vLLM: a line per label set ever current, in the order first set; the one of now is anywhere.
    const page = `${lines(3000, (i) => info(`old-${i}`, String(1.7e9 + i)))}\n${info('now', '1700009999.5')}\n${lines(10, (i) => info(`reused-${i}`, String(1.7e9 + 5000 + i)))}\nr 7\n`;
    const series = seriesOf(page, ['info', 'r'], ['info']);
    // Before: the first MAX_SAMPLES_PER_SERIES lines only, the newest of which was old-1023.
    assert.deepEqual(series.get('info'), [{ labels: { max_lora: '1', running_lora_adapters: 'now' }, value: 1700009999.5 }]);
    assert.deepEqual(series.get('r'), [{ labels: {}, value: 7 }]);
  });

  test('values compare as numbers in any notation; a timestamp after the value, a `}` in a label value, CRLF are read', () => {
    const page = [info('a', '1.7e9'), info('b', '1700000001 1700000001000'), 'info{msg="x} 9e99",running_lora_adapters="c"} 1700000000.5\r', info('d', '+Inf')].join('\n');
    assert.equal(seriesOf(page, ['info'], ['info']).get('info')![0].labels.running_lora_adapters, 'd');
    const finite = page.slice(0, page.lastIndexOf('\n'));
    assert.equal(seriesOf(finite, ['info'], ['info']).get('info')![0].labels.running_lora_adapters, 'b');
    assert.equal(seriesOf([info('neg', '-1'), info('zero', '0 1700000000000')].join('\n'), ['info'], ['info']).get('info')![0].labels.running_lora_adapters, 'zero');
  });

  test('lines without a number never win; malformed labels on the newest line read as no sample, not an older one', () => {
    assert.equal(seriesOf([info('a', '5'), info('b', 'NaN'), info('c', 'soon'), 'info{running_lora_adapters="d" 9'].join('\n'), ['info'], ['info']).get('info')![0].labels.running_lora_adapters, 'a');
    assert.deepEqual(seriesOf([info('a', '5'), 'info{running_lora_adapters=d} 9'].join('\n'), ['info'], ['info']).get('info'), []);
    assert.deepEqual(seriesOf('other 1', ['info'], ['info']).get('info'), []);
  });
});
