// A stream still going when the shutdown grace period ends is cut by the gateway: its record says so (shutting_down),
// neither upstream_error, which blamed the model server at every rolling deploy, nor client_closed, which blamed the
// client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { ExtprocClient } from '../src/extproc/client.js';
import { startGateway, type Gateway, type GatewayOptions } from '../src/gateway/gateway.js';
import type { Logger } from '../src/lib/logger.js';
import { waitFor } from '../src/sim/testing.js';
import { headerMap, sendChatRequest } from './helpers/extproc-envoy.js';
import { collectingLogger, type AccessLine } from './helpers/log-lines.js';
import { poolAndModel, settings } from './helpers/manifests.js';
import { startStub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

/** A logger that keeps the gateway's lines, and the error codes of its access-log lines. */
function accessLines() {
  const { logger, lines } = collectingLogger<AccessLine & { inputTokens?: number }>();
  const requests = () => lines.filter((l) => l.msg === 'request');
  return { logger, requests, errorCodes: () => requests().map((l) => l.errorCode) };
}

/** A gateway before `upstreamUrl` whose shutdown grace is 200 ms. */
function graceGateway(upstreamUrl: string, logger: Logger, options: Partial<GatewayOptions> = {}): Promise<Gateway> {
  const manifests = [...poolAndModel([upstreamUrl]), settings({ server: { shutdownGracePeriod: '200ms' } })];
  return startGateway({ configPaths: [], manifests, ...LOOPBACK, logger, ...options });
}

test('a stream cut when the shutdown grace ends is recorded as shutting_down, not as the model server or the client failing', async () => {
  // One event, then nothing: the stream outlasts the grace period.
  const stub = await startStub(({ res }) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"a"}}]}\n\n');
  });
  const { logger, errorCodes } = accessLines();
  const gw = await graceGateway(stub.url, logger);
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
    assert.deepEqual(errorCodes(), ['shutting_down']);
  } finally {
    await gw.close();
    await stub.close();
  }
});

test('a request still waiting for its answer when the grace ends counts as a 503 shutting_down, not status 0', async () => {
  // Never answers: the request waits for its first byte past the grace period.
  const stub = await startStub(() => {});
  const { logger, errorCodes, requests } = accessLines();
  const gw = await graceGateway(stub.url, logger);
  try {
    const answered = fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }) }).catch(() => 'cut');
    await waitFor(() => stub.requests.length === 1, 5000, 'the request upstream');
    await gw.close();
    assert.equal(await answered, 'cut');
    assert.deepEqual(errorCodes(), ['shutting_down']);
    // Not charged its prompt as a client that hung up on a model server at work is.
    assert.equal(requests()[0].inputTokens, undefined);
    assert.match(await gw.registry.metrics(), /tollgate_requests_total\{product="",model="m",status="503"\} 1/);
  } finally {
    await gw.close();
    await stub.close();
  }
});

test('an ext_proc stream still in its answer when the grace ends is recorded as shutting_down too', async () => {
  const stub = await startStub();
  const { logger, errorCodes } = accessLines();
  const gw = await graceGateway(stub.url, logger, { extprocPort: 0 });
  const client = new ExtprocClient({ address: `127.0.0.1:${gw.extprocPort}` });
  try {
    await waitFor(() => gw.picker.ready().every((p) => p.reachable), 5000, 'the endpoint scraped');
    const call = client.open(10_000);
    await sendChatRequest(call, JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] }));
    await call.send({ response_headers: { headers: headerMap([[':status', '200'], ['content-type', 'text/event-stream']]), end_of_stream: false } });
    await call.send({ response_body: { body: Buffer.from('data: {"choices":[{"delta":{"content":"a"}}]}\n\n'), end_of_stream: false } });
    await gw.close();
    assert.deepEqual(errorCodes(), ['shutting_down']);
  } finally {
    client.close();
    await gw.close();
    await stub.close();
  }
});
