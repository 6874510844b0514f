// A client that hangs up with requests pipelined behind the one being answered: node:http gives a pipelined response
// the connection only once the one ahead of it is finished, so the response's own close never comes. Every request of
// the connection must still be cut, wherever it is (at the model server, in the flow-control queue), and recorded as
// the client's hang-up.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { collectingLogger } from './helpers/log-lines.js';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { recordFromContext, type AnalyticsRecord } from '../src/analytics/index.js';
import { waitFor } from '../src/sim/testing.js';
import { poolAndModel, settings } from './helpers/manifests.js';
import { untilEndpoints } from './helpers/pool-ready.js';
import { IDLE_METRICS, queuedMetrics, startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const BOUNDED = { timeout: 30_000 };

/** `ids.length` chat requests in one write on one connection; the returned function hangs up. */
function pipelined(port: number, ids: string[], stream: boolean): () => void {
  const requests = ids.map((id) => {
    const body = JSON.stringify({ model: 'm', stream, messages: [{ role: 'user', content: id }] });
    return `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-request-id: ${id}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
  });
  const socket = connect(port, '127.0.0.1', () => socket.write(requests.join('')));
  socket.on('data', () => {});
  socket.on('error', () => {});
  return () => socket.destroy();
}

describe('a client that hangs up with requests pipelined on its connection', async () => {
  let stub: Stub;
  let gw: Gateway;
  const { logger, lines } = collectingLogger();
  const records: AnalyticsRecord[] = [];
  /** The stub's answers whose connection to the gateway has closed. */
  let cut = 0;

  before(async () => {
    // A stream that goes on until the gateway hangs up.
    stub = await startStub(({ res }) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const events = setInterval(() => res.write(`data: {"choices":[{"delta":{"content":"${'x'.repeat(2000)}"}}]}\n\n`), 10);
      res.on('close', () => {
        clearInterval(events);
        cut++;
      });
    });
    // maxWait and responseTimeout far beyond the waits below: only the hang-up can end these requests in time.
    const limits = settings({ upstream: { responseTimeout: '5m' }, scheduler: { flowControl: { maxWait: '5m' } } });
    gw = await startGateway({ configPaths: [], manifests: [...poolAndModel([stub.url]), limits], ...LOOPBACK, logger });
    await untilEndpoints(gw);
    const analytics = gw.analytics!;
    const record = analytics.recordRequest.bind(analytics);
    analytics.recordRequest = (ctx, identity, then) => {
      records.push(recordFromContext(ctx, identity));
      record(ctx, identity, then);
    };
  });

  after(async () => {
    await gw?.close();
    await stub?.close();
  });

  async function hungUp(ids: string[]): Promise<void> {
    const recorded = () => ids.map((id) => records.find((r) => r.requestId === id));
    await waitFor(() => recorded().every((r) => r !== undefined), 5000, 'every request of the connection to be recorded', 10);
    assert.deepEqual(recorded().map((r) => r!.faultCode), ids.map(() => 'client_closed'));
    const logged = ids.map((id) => lines.find((l) => l.msg === 'request' && l.requestId === id));
    assert.deepEqual(logged.map((l) => l?.errorCode), ids.map(() => 'client_closed'));
    await waitFor(() => gw.dataPlane.inflight === 0, 5000, 'no request in flight', 10);
    assert.deepEqual(gw.picker.view('pool')!.endpoints.map((e) => e.inFlight), [0], 'a pick was not released');
  }

  test('while answered upstream: every exchange is cut, the ones that never had the connection without status or bytes', BOUNDED, async () => {
    const ids = ['streamed-0', 'streamed-1', 'streamed-2'];
    const hangUp = pipelined(gw.port, ids, true);
    await waitFor(() => stub.requests.length === ids.length, 5000, 'the requests at the model server', 10);
    // Long enough for the answers behind the first to fill what node:http buffers for them.
    await new Promise((resolve) => setTimeout(resolve, 200));
    hangUp();
    // Before: the two behind the first ran on at the model server until responseTimeout, as 200s.
    await waitFor(() => cut === ids.length, 5000, 'every upstream exchange to be cut', 10);
    await hungUp(ids);
    const behind = records.filter((r) => r.requestId !== 'streamed-0' && ids.includes(r.requestId));
    assert.deepEqual(behind.map((r) => [r.status, r.bytesOut]), [[undefined, 0], [undefined, 0]], 'nothing of theirs reached the client');
  });

  test('while queued in flow control: every request leaves the queue and never reaches a model server', BOUNDED, async () => {
    const before = stub.requests.length;
    stub.metrics = queuedMetrics(10);
    try {
      await waitFor(() => gw.picker.view('pool')!.saturated, 5000, 'the pool saturated', 10);
      const ids = ['queued-0', 'queued-1', 'queued-2'];
      const hangUp = pipelined(gw.port, ids, false);
      await waitFor(() => gw.picker.view('pool')!.queueLength === ids.length, 5000, 'the requests queued', 10);
      hangUp();
      // Before: the two behind the first kept their places until maxWait.
      await waitFor(() => gw.picker.view('pool')!.queueLength === 0, 5000, 'the queue to empty', 10);
      await hungUp(ids);
      assert.deepEqual(records.filter((r) => ids.includes(r.requestId)).map((r) => r.status), [undefined, undefined, undefined]);
      assert.equal(stub.requests.length, before, 'a queued request reached the model server');
    } finally {
      stub.metrics = IDLE_METRICS;
    }
  });
});
