// The client's side of the data plane end to end over loopback: a client that leaves before its request is sent
// upstream (while the policies run, mid-upload), a chunked body node:http cannot parse, and a request on a kept-alive
// connection while the gateway drains. What the client gets, and what the access log and usage records say.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectingLogger, type AccessLine } from './helpers/log-lines.js';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { recordFromContext, type AnalyticsRecord } from '../src/analytics/index.js';
import type { Manifest } from '../src/config/manifest.js';
import { waitFor } from '../src/sim/testing.js';
import { createApp, quotaReport, untilKeyKnown } from './helpers/apim-admin.js';
import { manifest, poolAndModel } from './helpers/manifests.js';
import { untilEndpoints } from './helpers/pool-ready.js';
import { sleep, startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const BOUNDED = { timeout: 30_000 };
const CHAT = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello' }] });

/**
 * A gateway on loopback whose picker has found every endpoint ready; `lines` collects its log (the access log among
 * it), `records` every usage record written.
 */
async function gatewayFor(manifests: Manifest[]): Promise<{ gw: Gateway; lines: AccessLine[]; records: AnalyticsRecord[] }> {
  const { logger, lines } = collectingLogger();
  const gw = await startGateway({ configPaths: [], manifests, ...LOOPBACK, logger });
  await untilEndpoints(gw);
  const records: AnalyticsRecord[] = [];
  const analytics = gw.analytics!;
  const record = analytics.recordRequest.bind(analytics);
  analytics.recordRequest = (ctx, identity, then) => {
    records.push(recordFromContext(ctx, identity));
    record(ctx, identity, then);
  };
  return { gw, lines, records };
}

async function accessLine(lines: AccessLine[], requestId: string): Promise<AccessLine> {
  const find = () => lines.find((l) => l.msg === 'request' && l.requestId === requestId);
  await waitFor(() => find() !== undefined, 5000, `the access log line of ${requestId}`, 10);
  return find()!;
}

function chatRequest(headers: Record<string, string>, body = CHAT): string {
  const head = Object.entries({ host: 'x', 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers })
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  return `POST /v1/chat/completions HTTP/1.1\r\n${head}\r\n${body}`;
}

/** A raw connection to the gateway that collects what it reads; `closed` resolves with all of it when the gateway closes it. */
function rawClient(port: number): { socket: Socket; closed: Promise<string> } {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  socket.on('error', () => {});
  return { socket, closed: new Promise((resolve) => socket.on('close', () => resolve(text))) };
}

describe('a client that leaves while the request policies run', async () => {
  // A ServiceCallout that answers only when the test lets it: the client leaves while the policies wait for it.
  let calloutStarted!: () => void;
  let answerCallout!: () => void;
  const started = new Promise<void>((resolve) => (calloutStarted = resolve));
  const released = new Promise<void>((resolve) => (answerCallout = resolve));
  let callout: Server;
  let stub: Stub;
  let gw: Gateway;
  let lines: AccessLine[];
  let records: AnalyticsRecord[];
  let key: string;

  before(async () => {
    callout = createServer((_req, res) => {
      calloutStarted();
      void released.then(() => res.end('{"ok":true}'));
    }).listen(0, '127.0.0.1');
    await new Promise((resolve) => callout.once('listening', resolve));
    stub = await startStub();
    const ext = [{ name: 'ext', kind: 'APIMExtensionPolicy', group: 'apim.googleapis.com' }];
    ({ gw, lines, records } = await gatewayFor([
      manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate', kind: 'Gateway' } }),
      manifest('APIProduct', 'prod', { displayName: 'P', approvalType: 'auto', enforcementRefs: ext }),
      manifest('APIOperationSet', 'ops', { apiProductRefs: [{ name: 'prod' }] }),
      manifest('LLMTokenQuota', 'tokens', { limit: 1_000_000, timeUnit: 'day', countOn: 'total' }),
      manifest('ServiceCallout', 'slow', {
        request: { url: `http://127.0.0.1:${(callout.address() as AddressInfo).port}/x`, method: 'GET' },
        allowedHosts: ['127.0.0.1'],
        timeout: '20s',
      }),
      manifest('ApimTemplate', 'limits', { templates: [{ policies: [{ kind: 'ServiceCallout', name: 'slow' }, { kind: 'LLMTokenQuota', name: 'tokens' }] }] }),
      ...poolAndModel([stub.url]),
    ]));
    key = (await createApp(gw.adminUrl, ['prod'], 'leaves')).key;
    await untilKeyKnown(gw.url, key);
  });

  after(async () => {
    answerCallout();
    await gw?.close();
    await stub?.close();
    callout?.closeAllConnections();
    callout?.close();
  });

  test('is not sent to the model server: recorded once as client_closed, its pick and token reservation given back', BOUNDED, async () => {
    const { socket } = rawClient(gw.port);
    socket.write(chatRequest({ 'x-api-key': key, 'x-request-id': 'left-in-policies' }));
    await started;
    socket.destroy();
    // Time for the gateway to see the connection close before the callout answers and the policies go on.
    await sleep(300);
    answerCallout();
    const line = await accessLine(lines, 'left-in-policies');
    assert.deepEqual([line.errorCode, line.status], ['client_closed', undefined]);
    // Before: the model server got the request once the callout answered, and it was recorded and charged as a 200.
    assert.equal(stub.requests.length, 0, 'the request reached the model server');
    const mine = records.filter((r) => r.requestId === 'left-in-policies');
    assert.deepEqual(mine.map((r) => [r.faultCode, r.status]), [['client_closed', undefined]]);
    const quota = await quotaReport(gw.url, key);
    assert.equal(quota.body.quotas.find((q: { policy: string }) => q.policy === 'tokens').used, 0, 'the token reservation was kept');
    const pool = (await (await fetch(`${gw.adminUrl}/v1/pools/pool`)).json()) as { endpoints: { inFlight: number }[] };
    assert.deepEqual(pool.endpoints.map((e) => e.inFlight), [0], 'the pick was not released');
  });
});

describe('request bodies', async () => {
  let stub: Stub;
  let gw: Gateway;
  let lines: AccessLine[];

  before(async () => {
    stub = await startStub();
    ({ gw, lines } = await gatewayFor(poolAndModel([stub.url])));
  });

  after(async () => {
    await gw?.close();
    await stub?.close();
  });

  test('a client that hangs up mid-upload is recorded as client_closed, not 400 invalid_request', BOUNDED, async () => {
    const { socket, closed } = rawClient(gw.port);
    const request = chatRequest({ 'x-request-id': 'left-mid-body' });
    socket.write(request.slice(0, -10));
    await waitFor(() => gw.dataPlane.inflight === 1, 5000, 'the gateway to start reading the body', 10);
    socket.destroy();
    await closed;
    const line = await accessLine(lines, 'left-mid-body');
    assert.deepEqual([line.errorCode, line.status], ['client_closed', undefined]);
    assert.equal(stub.requests.length, 0);
  });

  test('a malformed chunked body is answered 400 in the documented shape, and the connection closes', BOUNDED, async () => {
    const body = CHAT;
    const size = body.length.toString(16);
    const cases: [string, string][] = [
      ['bad-chunk-size', `fffffffffffffffffff\r\n${body}\r\n0\r\n\r\n`],
      ['bad-chunk-terminator', `${size}\r\n${body}XX0\r\n\r\n`],
      ['chunk-extension-overflow', `${size};${'e'.repeat(100_000)}\r\n${body}\r\n0\r\n\r\n`],
    ];
    for (const [id, chunked] of cases) {
      const { socket, closed } = rawClient(gw.port);
      socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-request-id: ${id}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n${chunked}`);
      // Before: the connection was reset without a byte, while the access log said 400.
      const text = await closed;
      const [head, rest] = text.split('\r\n\r\n', 2);
      assert.match(head, /^HTTP\/1.1 400 Bad Request\r\n/, `${id}: ${JSON.stringify(text)}`);
      assert.match(head, /\r\nconnection: close(\r\n|$)/i, id);
      assert.match(head, new RegExp(`\\r\\nx-request-id: ${id}\\r\\n`, 'i'), id);
      const error = (JSON.parse(rest) as { error: { type: string; code: string; message: string } }).error;
      assert.deepEqual([error.type, error.code], ['invalid_request_error', 'invalid_request'], id);
      const line = await accessLine(lines, id);
      assert.deepEqual([line.status, line.errorCode], [400, 'invalid_request'], id);
    }
    assert.equal(stub.requests.length, 0);
  });
});

describe('draining after close() (SIGTERM)', async () => {
  test('a request on a kept-alive connection gets 503 shutting_down with connection: close; new connections are refused', BOUNDED, async () => {
    let answer!: () => void;
    const release = new Promise<void>((resolve) => (answer = resolve));
    const stub = await startStub(async ({ res }) => {
      await release;
      res.setHeader('content-type', 'application/json');
      res.end('{"choices":[]}');
    });
    const { gw, lines } = await gatewayFor(poolAndModel([stub.url]));
    try {
      const { socket, closed } = rawClient(gw.port);
      socket.write(chatRequest({ 'x-request-id': 'in-flight' }));
      await waitFor(() => stub.requests.length === 1, 5000, 'the in-flight request upstream', 10);
      const closing = gw.close();
      // Behind the one in flight, on its connection: node:http hands it over at once, its answer waits its turn.
      socket.write(chatRequest({ 'x-request-id': 'during-drain' }));
      const refused = await new Promise<string>((resolve) => {
        const late = connect(gw.port, '127.0.0.1');
        late.on('connect', () => resolve('connected'));
        late.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      });
      assert.equal(refused, 'ECONNREFUSED');
      // The second request handed over (its 503 written, or about to be) before the first one's answer ends the connection.
      await waitFor(() => gw.dataPlane.inflight === 2 || lines.some((l) => l.requestId === 'during-drain'), 5000, 'the gateway to take the second request', 1);
      answer();
      const text = await closed;
      await closing;
      const answers = text.split(/(?=HTTP\/1\.1 )/);
      assert.equal(answers.length, 2, text);
      assert.match(answers[0], /^HTTP\/1.1 200 OK\r\n/);
      assert.match(answers[1], /^HTTP\/1.1 503 Service Unavailable\r\n/);
      assert.match(answers[1], /"code":"shutting_down"/);
      // Before: `connection: keep-alive`, inviting a next request the gateway was about to cut off.
      assert.match(answers[1], /\r\nconnection: close\r\n/i);
    } finally {
      answer();
      await gw.close();
      await stub.close();
    }
  });
});
