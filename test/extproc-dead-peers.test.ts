// ext_proc streams whose Envoy is gone without closing them: a connection that stops answering (an Envoy node lost
// without FIN or RST) is found by HTTP/2 keepalive pings, and a stream left silent past the model's response timeout
// is cancelled. Either way the pick is released and the request accounted once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { loadConfig } from '../src/config/load.js';
import type { RequestContext } from '../src/gateway/context.js';
import type { DataPlane } from '../src/gateway/data-plane.js';
import { silentLogger } from '../src/lib/logger.js';
import { ExtprocClient, type ExtprocCall } from '../src/extproc/client.js';
import type { ProcessingRequest } from '../src/extproc/messages.js';
import { startExtprocServer, type ExtprocServer } from '../src/extproc/server.js';
import { waitFor } from '../src/sim/testing.js';
import { headerMap } from './helpers/extproc-envoy.js';
import { poolAndModel } from './helpers/manifests.js';
import { sleep, startStub, type Stub } from './helpers/stub-upstream.js';
import { bareDataPlane, CountingPicker } from './helpers/bare-data-plane.js';

const CHAT = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello' }] });
const HEADERS: ProcessingRequest = { request_headers: { headers: headerMap([[':method', 'POST'], [':path', '/v1/chat/completions'], [':authority', 'gw'], ['content-type', 'application/json']]) } };
/** The model's own response timeout: the idle limit is this plus the listener's margin. */
const RESPONSE_TIMEOUT_MS = 300;
const IDLE_MARGIN_MS = 200;

let stub: Stub;
let picker: CountingPicker;
let completed: RequestContext[];
let dataPlane: DataPlane;

before(async () => {
  stub = await startStub();
  const config = loadConfig([], poolAndModel([stub.url], 'm', { timeouts: { response: `${RESPONSE_TIMEOUT_MS}ms` } }));
  picker = new CountingPicker();
  completed = [];
  dataPlane = bareDataPlane(config, picker, { complete: (ctx) => void completed.push(ctx) });
});

after(async () => {
  await stub.close();
});

/** Sends the request and waits for the decision: the stream now holds a pick. */
async function decided(call: ExtprocCall): Promise<void> {
  await call.send(HEADERS);
  const answer = await call.send({ request_body: { body: Buffer.from(CHAT), end_of_stream: true } });
  assert.ok(answer.request_body?.response?.header_mutation, JSON.stringify(answer).slice(0, 200));
  assert.equal(picker.inFlight, 1);
}

/** A TCP relay that can go silent: bytes stop flowing both ways, and neither side sees the connection close. */
async function silentRelay(port: number): Promise<{ port: number; freeze(): void; close(): Promise<void> }> {
  const sockets: Socket[] = [];
  const relay: Server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    sockets.push(client, upstream);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  return {
    port: (relay.address() as { port: number }).port,
    freeze() {
      for (const s of sockets) {
        s.unpipe();
        s.pause();
      }
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => relay.close(() => resolve()));
    },
  };
}

describe('an Envoy gone without closing its connection', () => {
  let server: ExtprocServer;

  before(async () => {
    // Keepalive pings every 100 ms; the idle limit left at its default (the model's 300 ms plus 30 s), far off.
    server = await startExtprocServer({ dataPlane, logger: silentLogger }, { port: 0, host: '127.0.0.1', keepalive: { timeMs: 100, timeoutMs: 200 } });
  });

  after(async () => {
    await server.close(100);
  });

  test('a connection that stops answering keepalive pings is closed: its stream\'s pick is released, the request accounted once', async () => {
    const relay = await silentRelay(server.port);
    const client = new ExtprocClient({ address: `127.0.0.1:${relay.port}` });
    try {
      const n = completed.length;
      const call = client.open(10_000);
      await decided(call);
      relay.freeze();
      await waitFor(() => picker.inFlight === 0 && completed.length === n + 1, 5000, 'the pick released once the pings go unanswered');
      // Cancelled, as Envoy ends every stream: untold Envoy's response body mode, the answer went on unseen
      // (extproc-unseen-answer.test.ts).
      assert.equal(completed.at(-1)!.answerUnseen, true);
      assert.equal(server.streams, 0);
    } finally {
      client.close();
      await relay.close();
    }
  });
});

describe('a stream Envoy leaves silent', () => {
  let server: ExtprocServer;
  let client: ExtprocClient;

  before(async () => {
    server = await startExtprocServer({ dataPlane, logger: silentLogger }, { port: 0, host: '127.0.0.1', idleMarginMs: IDLE_MARGIN_MS });
    client = new ExtprocClient({ address: `127.0.0.1:${server.port}` });
  });

  after(async () => {
    client.close();
    await server.close(100);
  });

  test('silent past the model\'s response timeout plus the margin after its decision: cancelled, the pick released, the request accounted once', async () => {
    const n = completed.length;
    const call = client.open(10_000);
    await decided(call);
    // The connection stays healthy (its pings are answered); only this stream is quiet.
    await waitFor(() => picker.inFlight === 0 && completed.length === n + 1, 5000, 'the idle stream cancelled');
    const ctx = completed.at(-1)!;
    assert.equal(ctx.errorCode, 'client_closed');
    assert.equal(ctx.attempts, 1, 'forwarded: abandoned as a stream Envoy cancelled is');
    await assert.rejects(call.send({ response_headers: { headers: headerMap([[':status', '200']]) } }), /sent nothing on this stream/);
    await sleep(50);
    assert.equal(completed.length, n + 1, 'accounted exactly once');
    assert.equal(server.streams, 0);
  });

  test('a stream that keeps sending lives past the idle limit: every message starts it again', async () => {
    const n = completed.length;
    const call = client.open(10_000);
    await decided(call);
    await call.send({ response_headers: { headers: headerMap([[':status', '200'], ['content-type', 'text/event-stream']]) } });
    const limit = RESPONSE_TIMEOUT_MS + IDLE_MARGIN_MS;
    // Pieces a fifth of the limit apart, for three limits in all.
    for (let i = 0; i < 15; i++) {
      const r = await call.send({ response_body: { body: Buffer.from(`data: {"choices":[{"delta":{"content":"${i}"}}]}\n\n`), end_of_stream: false } });
      assert.equal(r.response, 'response_body');
      await sleep(limit / 5);
    }
    await call.send({ response_body: { body: Buffer.from('data: [DONE]\n\n'), end_of_stream: true } });
    call.end();
    await waitFor(() => completed.length === n + 1 && picker.inFlight === 0, 3000, 'finish');
    assert.equal(completed.at(-1)!.errorCode, undefined);
  });
});
