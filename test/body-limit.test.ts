// A body over the limit gets its 413 even while the client is still uploading it. The gateway used to close the
// connection at once, so the kernel reset it under the upload and the client (the OpenAI SDKs through fetch) saw
// EPIPE instead of the answer, then retried, uploading the whole body again. And a client waiting on
// `Expect: 100-continue` with a declared body over the limit was asked for it anyway, only to be refused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { manifest, poolAndModel } from './helpers/manifests.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const LIMIT = 64 * 1024;
let stub: Stub;
let gw: Gateway;

/** A gateway in front of the stub with these server settings (and the body limit). */
function gatewayWith(server: Record<string, unknown>): Promise<Gateway> {
  return startGateway({
    configPaths: [],
    manifests: [...poolAndModel([stub.url]), manifest('GatewaySettings', 's', { server: { maxBodyBytes: LIMIT, ...server } })],
    ...LOOPBACK,
  });
}

before(async () => {
  stub = await startStub();
  gw = await gatewayWith({});
});
after(async () => {
  await gw.close();
  await stub.close();
});

/** A raw connection to the data plane, with what it has received so far. */
async function open(): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  const socket = connect(gw.port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, received: () => text, closed };
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(check(), what);
}

/** Writes `bytes` in 64 KiB pieces, waiting for each to be taken: rejects when the connection is reset under it. */
async function upload(socket: Socket, bytes: number): Promise<void> {
  const piece = Buffer.alloc(64 * 1024, 'x');
  for (let sent = 0; sent < bytes; sent += piece.length) {
    await new Promise<void>((resolve, reject) => socket.write(piece.subarray(0, Math.min(piece.length, bytes - sent)), (err) => (err ? reject(err) : resolve())));
  }
}

test('a declared body over the limit: the 413 comes at once, the rest of the upload is read and dropped, and the connection serves the next request', async () => {
  const { socket, received } = await open();
  const size = 4 * 1024 * 1024;
  socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${size}\r\n\r\n`);
  await upload(socket, 256 * 1024);
  await until(() => received().includes('body_too_large'), 'the 413 while uploading');
  assert.match(received(), /^HTTP\/1\.1 413 /);
  // Before: the connection was closed under the upload, and these writes failed with EPIPE / ECONNRESET.
  await upload(socket, size - 256 * 1024);
  const next = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
  socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${next.length}\r\n\r\n${next}`);
  await until(() => /HTTP\/1\.1 200 /.test(received()), 'the next request on the same connection answered');
  socket.destroy();
});

test('a chunked body that outgrows the limit gets the same: 413, then the rest is read', async () => {
  const { socket, received } = await open();
  socket.write('POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n');
  const chunk = Buffer.alloc(32 * 1024, 'x');
  const writeChunk = () => new Promise<void>((resolve, reject) => socket.write(Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]), (err) => (err ? reject(err) : resolve())));
  for (let i = 0; i < 4; i++) await writeChunk();
  await until(() => received().includes('body_too_large'), 'the 413 while uploading');
  for (let i = 0; i < 60; i++) await writeChunk();
  await new Promise<void>((resolve, reject) => socket.write('0\r\n\r\n', (err) => (err ? reject(err) : resolve())));
  const next = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
  socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${next.length}\r\n\r\n${next}`);
  await until(() => /HTTP\/1\.1 200 /.test(received()), 'the next request on the same connection answered');
  socket.destroy();
});

test('Expect: 100-continue with a declared body over the limit: no 100, the 413 at once, and the connection closes (the body never comes)', async () => {
  const { socket, received, closed } = await open();
  socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nexpect: 100-continue\r\ncontent-length: ${LIMIT + 1}\r\n\r\n`);
  await closed;
  assert.match(received(), /^HTTP\/1\.1 413 /);
  assert.doesNotMatch(received(), /100 Continue/);
  assert.match(received(), /connection: close/i);
});

test('Expect: 100-continue with a body within the limit is asked for it and served', async () => {
  const { socket, received } = await open();
  const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
  socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nexpect: 100-continue\r\ncontent-length: ${body.length}\r\n\r\n`);
  await until(() => received().startsWith('HTTP/1.1 100 Continue'), 'the 100 Continue');
  socket.write(body);
  await until(() => /HTTP\/1\.1 200 /.test(received()), 'the answer');
  socket.destroy();
});

test('an upload that stops after its 413 is cut when the body time is up, with no second answer on the connection', async (t) => {
  const quick = await gatewayWith({ bodyTimeout: '1s' });
  t.after(() => quick.close());
  const socket = connect(quick.port, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${4 * 1024 * 1024}\r\n\r\n`);
  socket.write(Buffer.alloc(128 * 1024, 'x'));
  await closed;
  assert.match(text, /^HTTP\/1\.1 413 /);
  assert.equal(text.match(/HTTP\/1\.1 \d{3}/g)!.length, 1, text.slice(0, 400));
});
