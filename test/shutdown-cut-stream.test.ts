// A stream still going when the shutdown grace period ends is cut by the gateway: its record says so (client_closed,
// its connection closed mid-answer), not upstream_error, which blamed the model server at every rolling deploy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startGateway } from '../src/gateway/gateway.js';
import { waitFor } from '../src/sim/testing.js';
import { poolAndModel, settings } from './helpers/manifests.js';
import { startStub } from './helpers/stub-upstream.js';

test('a stream cut when the shutdown grace ends is recorded as client_closed, not as the model server failing', async () => {
  // One event, then nothing: the stream outlasts the grace period.
  const stub = await startStub(({ res }) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"a"}}]}\n\n');
  });
  const lines: { msg?: string; errorCode?: string }[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(JSON.parse(chunk.toString())), done()) }));
  const gw = await startGateway({
    configPaths: [],
    manifests: [...poolAndModel([stub.url]), settings({ server: { shutdownGracePeriod: '200ms' } })],
    port: 0,
    adminPort: 0,
    host: '127.0.0.1',
    watch: false,
    logger,
  });
  try {
    const body = JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    let received = '';
    const cut = new Promise<void>((resolve) => {
      const req = request(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        res.on('data', (c: Buffer) => (received += c));
        res.on('error', () => resolve());
        res.on('close', () => resolve());
      });
      req.on('error', () => resolve());
      req.end(body);
    });
    await waitFor(() => received.includes('data:'), 5000, 'the first event');
    await gw.close();
    await cut;
    const records = lines.filter((l) => l.msg === 'request');
    assert.deepEqual(records.map((r) => r.errorCode), ['client_closed']);
  } finally {
    await gw.close();
    await stub.close();
  }
});
