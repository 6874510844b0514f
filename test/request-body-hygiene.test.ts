// What a client's body can make the gateway write, send on or echo, end to end over loopback: a huge model name is
// clipped in the access log, the 404 and the trace; a compressed body is refused (415), never passed on mislabelled;
// a number JSON reads as Infinity is refused rather than sent upstream as null.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { pino } from 'pino';
import { request } from 'undici';
import { waitFor } from '../src/sim/testing.js';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';
import { poolAndModel, settings } from './helpers/manifests.js';
import { startOtlpReceiver, type OtlpReceiver } from './helpers/otlp-receiver.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const CHAT = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello' }] });

interface Answer {
  status: number;
  headers: Record<string, unknown>;
  text: string;
}

describe('what a request body can make the gateway write, send on or echo', () => {
  let stub: Stub;
  let gw: Gateway;
  let receiver: OtlpReceiver;
  /** The gateway's log lines as written. */
  const lines: string[] = [];

  before(async () => {
    stub = await startStub();
    receiver = await startOtlpReceiver();
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    // A rewritten model: its body is serialized again on the way upstream.
    const manifests = [
      ...poolAndModel([stub.url], 'm', { targetModels: [{ name: 'm-target', weight: 1 }] }),
      settings({ tracing: { endpoint: receiver.endpoint, exportInterval: '20ms' } }),
    ];
    gw = await startGateway({ configPaths: [], manifests, ...LOOPBACK, logger });
  });
  after(async () => {
    await gw.close();
    await stub.close();
    receiver.close();
  });

  async function post(body: string | Buffer, headers: Record<string, string> = {}): Promise<Answer> {
    const r = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    return { status: r.statusCode, headers: r.headers, text: await r.body.text() };
  }

  test('a megabyte model name is clipped in the access log, the 404 and the span, not written or echoed whole', async () => {
    const model = 'x'.repeat(1024 * 1024);
    const got = await post(JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }), { 'x-request-id': 'huge-model' });
    assert.equal(got.status, 404, got.text);
    assert.equal((JSON.parse(got.text) as { error: { code: string } }).error.code, 'model_not_found');
    assert.ok(got.text.length < 1024, `a 404 of ${got.text.length} bytes`);
    await waitFor(() => lines.some((l) => l.includes('"requestId":"huge-model"')), 5000, 'the access log line');
    const line = lines.find((l) => l.includes('"requestId":"huge-model"'))!;
    assert.ok(line.length < 2048, `an access log line of ${line.length} bytes`);
    assert.ok((JSON.parse(line) as { model: string }).model.startsWith('xxx'));
    const requestIdIs = (s: { attributes: { key: string; value: { stringValue?: string } }[] }) => s.attributes.some((a) => a.key === 'tollgate.request_id' && a.value.stringValue === 'huge-model');
    await waitFor(() => receiver.spans().some(requestIdIs), 5000, 'the request span');
    const span = receiver.spans().find(requestIdIs)!;
    const named = span.attributes.find((a) => a.key === 'gen_ai.request.model')!.value.stringValue!;
    assert.ok(named.length <= 256, `a model attribute of ${named.length} characters`);
  });

  test('a compressed body is a 415 naming the coding taken, and never reaches the model server', async () => {
    const before = stub.requests.length;
    const codings: [string, Buffer][] = [
      ['gzip', gzipSync(CHAT)],
      ['deflate', deflateSync(CHAT)],
      ['br', brotliCompressSync(CHAT)],
      // Labelled but not compressed: tollgate would send its own bytes on under the client's label.
      ['gzip', Buffer.from(CHAT)],
      ['identity, gzip', gzipSync(CHAT)],
    ];
    for (const [coding, body] of codings) {
      const got = await post(body, { 'content-encoding': coding });
      assert.equal(got.status, 415, `${coding}: ${got.text}`);
      const error = (JSON.parse(got.text) as { error: { code: string; type: string } }).error;
      assert.deepEqual([error.code, error.type], ['unsupported_content_encoding', 'invalid_request_error']);
      assert.equal(got.headers['accept-encoding'], 'identity');
    }
    assert.equal(stub.requests.length, before, 'no request went upstream');
  });

  test('content-encoding identity is taken, and not passed on with the body tollgate wrote', async () => {
    const got = await post(CHAT, { 'content-encoding': 'identity' });
    assert.equal(got.status, 200, got.text);
    const sent = stub.requests.at(-1)!;
    assert.equal(sent.body.model, 'm-target', 'the body was serialized again');
    assert.equal(sent.req.headers['content-encoding'], undefined);
  });

  test('a number JSON reads as Infinity is a 400 naming the field, not a null the model server takes as its default', async () => {
    const before = stub.requests.length;
    const got = await post(CHAT.replace('{', '{"temperature":1e400,'));
    assert.equal(got.status, 400, got.text);
    const error = (JSON.parse(got.text) as { error: { code: string; param: string } }).error;
    assert.deepEqual([error.code, error.param], ['invalid_request', 'temperature']);
    assert.equal(stub.requests.length, before, 'no request went upstream');
  });
});
