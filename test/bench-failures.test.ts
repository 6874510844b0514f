import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describeFailures, fixedRateLatency } from '../bench/fixed-rate.js';
import { failureReport, run } from '../bench/overhead.js';

/** Answers 200, then 503, 429, 503, ... in turn; the first request to /reset closes its connection without answering. */
async function flakyServer(): Promise<{ url: string; close: () => Promise<void> }> {
  let n = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const status = [200, 503, 200, 429, 503][n++ % 5];
      res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

test('bench failures: the fixed-rate load counts failed requests by status, and the report names them', async () => {
  const server = await flakyServer();
  try {
    const r = await fixedRateLatency(server.url, '/v1/chat/completions', '{}', 200, 0.5);
    assert.equal(r.sent, 100);
    assert.deepEqual(r.failures, { 'status 503': 40, 'status 429': 20 });
    assert.equal(r.errors, 60);
    assert.equal(describeFailures([r.failures, { 'status 429': 5, ECONNRESET: 1 }]), 'status 503 ×40, status 429 ×25, ECONNRESET ×1');
    assert.equal(describeFailures([{}, {}]), '');
  } finally {
    await server.close();
  }
});

test('bench failures: the saturating load reports non-2xx answers by status; only scenarios with failures get a line', async () => {
  const server = await flakyServer();
  try {
    const m = await run(server.url, { duration: 1, connections: 2 });
    assert.ok(m.errors > 0);
    assert.deepEqual(Object.keys(m.failures).sort(), ['status 429', 'status 503']);
    assert.equal(m.failures['status 429'] + m.failures['status 503'], m.errors);
    const report = failureReport([
      { scenario: 'fine', failures: '' },
      { scenario: 'flaky', failures: describeFailures([m.failures]) },
    ]);
    assert.match(report, /^flaky failed requests: status 503 ×\d+, status 429 ×\d+\n$/);
  } finally {
    await server.close();
  }
});
