// `tollgate analytics`: the table (control characters in client-chosen text, such as model names and apps, are shown
// escaped, never sent raw), repeated flags, and answers that are not tollgate's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { analyticsCommand, printable, renderTable } from './analytics.js';
import { runCommand } from './testing.js';

test('control, bidi and line-separator characters are escaped visibly', () => {
  const cases: [string, string][] = [
    ['llama', 'llama'],
    ['llama\n2025-01-15T10:00:00.000Z  chatbot  999', 'llama\\n2025-01-15T10:00:00.000Z  chatbot  999'],
    ['a\rb\tc', 'a\\rb\\tc'],
    ['\x1b]0;owned\x07\x1b[2J', '\\u{1b}]0;owned\\u{7}\\u{1b}[2J'],
    ['nul\0del\x7f', 'nul\\u{0}del\\u{7f}'],
    ['c1\x9b31m\x85', 'c1\\u{9b}31m\\u{85}'],
    ['\u202egpj.exe', '\\u{202e}gpj.exe'],
    ['\u2066x\u2069\u200f\u061c', '\\u{2066}x\\u{2069}\\u{200f}\\u{61c}'],
    ['a\u2028b\u2029', 'a\\u{2028}b\\u{2029}'],
    ['back\\slash', 'back\\\\slash'],
    ['ＤＤＥ é 模型', 'ＤＤＥ é 模型'],
  ];
  for (const [text, shown] of cases) assert.equal(printable(text), shown, JSON.stringify(text));
});

test('a cell cannot add a line to the table or reach the terminal raw', () => {
  const lines = renderTable(['bucket_start', 'model', 'requests'], [
    { bucket_start: '2025-01-15T10:00:00.000Z', model: 'llama\n2025-01-15T10:00:00.000Z  forged  999', requests: 1 },
    { bucket_start: '2025-01-15T10:00:00.000Z', model: '\x1b[31mred', requests: 2 },
  ]);
  assert.equal(lines.length, 4);
  for (const line of lines) assert.doesNotMatch(line, /[\p{Cc}\p{Bidi_Control}]/u);
  assert.match(lines[2], /^2025-01-15T10:00:00\.000Z {2}llama\\n2025-01-15T10:00:00\.000Z {2}forged {2}999 {2}/);
  assert.match(lines[3], /^2025-01-15T10:00:00\.000Z {2}\\u\{1b\}\[31mred +2$/);
});

test('numbers: integers as they are, one decimal from 1 up, two significant digits below it (not 0.0)', () => {
  const lines = renderTable(['m', 'v'], [
    { m: 'a', v: 1234 },
    { m: 'b', v: 12.345 },
    { m: 'c', v: 0.043 },
    { m: 'd', v: 0.00012 },
    { m: 'e', v: -0.5 },
  ]);
  assert.deepEqual(lines.slice(2).map((l) => l.split(/ +/)[1]), ['1234', '12.3', '0.043', '0.00012', '-0.5']);
});

/** A stand-in for the admin API: each query's parameters, and the answer `answer` gives. */
async function statsServer(answer: { type: string; body: string }): Promise<{ admin: string; queries: URLSearchParams[]; close(): void }> {
  const queries: URLSearchParams[] = [];
  const server = createServer((req, res) => {
    queries.push(new URL(req.url!, 'http://x').searchParams);
    res.writeHead(200, { 'content-type': answer.type }).end(answer.body);
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { admin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, queries, close: () => server.close() };
}

test('repeated --group-by and --metrics add up, as kubectl\'s repeated flags do (before: the last one alone, silently)', async () => {
  const stats = await statsServer({ type: 'application/json', body: JSON.stringify({ groupBy: [], metrics: [], rows: [], newestRecordAt: null, lagSeconds: null }) });
  try {
    const runs = [
      ['--group-by', 'app', '--group-by', 'model,status', '--metrics', 'requests', '--metrics', 'errors'],
      ['--group-by', 'app,model,status', '--metrics', 'requests,errors'],
      [],
    ];
    for (const args of runs) assert.equal((await runCommand(analyticsCommand, ['--admin', stats.admin, ...args])).code, 0, args.join(' '));
    const asked = stats.queries.map((q) => [q.get('groupBy'), q.get('metrics')]);
    assert.deepEqual(asked, [
      ['app,model,status', 'requests,errors'],
      ['app,model,status', 'requests,errors'],
      [null, 'requests,errors,input_tokens,output_tokens'],
    ]);
  } finally {
    stats.close();
  }
});

test('--format csv takes only CSV: a login page answering 200 is one line and exit code 1, never printed (before: as the CSV, exit 0)', async () => {
  const page = await statsServer({ type: 'text/html', body: '<html>Sign in</html>' });
  try {
    for (const format of ['csv', 'json', 'table']) {
      const r = await runCommand(analyticsCommand, ['--admin', page.admin, '--format', format]);
      assert.equal(r.code, 1, format);
      assert.deepEqual(r.out, []);
      assert.deepEqual(r.err, [`tollgate analytics: ${page.admin} did not answer like tollgate's admin API (HTTP 200, text/html): is --admin the gateway's admin address?`]);
    }
  } finally {
    page.close();
  }
});
