// What an ExtensionChain extension can do wrong, or unusually, and what the data plane makes of it: nothing an
// extension does may end the gateway process; failOpen decides what a failure means; a clean close is no failure.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Server, ServerCredentials, status, type ServerDuplexStream } from '@grpc/grpc-js';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { extprocHooks, type ExtensionHooks, type ExtensionOptions } from '../src/extproc/extension-hooks.js';
import type { ProcessingRequest, ProcessingResponse } from '../src/extproc/messages.js';
import { extProcService } from '../src/extproc/protos.js';
import { call, codeOf, until } from './helpers/apim-admin.js';
import { poolAndModel } from './helpers/manifests.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

type Stream = ServerDuplexStream<ProcessingRequest, ProcessingResponse>;

/** Answers every message with an empty answer of its kind. */
const pass = (s: Stream, m: ProcessingRequest) => s.write({ [m.request!]: {} } as ProcessingResponse);
const setHeader = (key: string, value: string) => ({ header: { key, raw_value: Buffer.from(value) } });

let stub: Stub;
let gw: Gateway;
let ext: Server;
let address: string;
/** How the extension answers each message of the streams opened from now on. */
let onMessage: (s: Stream, m: ProcessingRequest) => void = pass;
/** Whether it ends its side when tollgate ends its own (a grpc-js server that forgets to never does). */
let endsItsSide = true;
/** Per stream: whether tollgate ended its side, and whether it cut the stream off before the extension ended its own. */
const streams: { ended: boolean; cutOff: boolean }[] = [];
const extensions: ExtensionHooks[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (err: unknown) => unhandled.push(err);

function use(options: Partial<ExtensionOptions>): void {
  const hooks = extprocHooks({ name: 'ext', address, supportedEvents: ['RequestHeaders'], timeoutMs: 2000, failOpen: false, ...options }, { registry: gw.registry });
  extensions.push(hooks);
  gw.dataPlane.hooks = hooks;
}

function chat(content = 'Hello') {
  return call(gw.url, 'POST', '/v1/chat/completions', { model: 'm', messages: [{ role: 'user', content }] });
}

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

before(async () => {
  process.on('unhandledRejection', onUnhandled);
  stub = await startStub();
  ext = new Server();
  ext.addService(extProcService(), {
    Process: (s: Stream) => {
      const seen = { ended: false, cutOff: false };
      streams.push(seen);
      const answer = onMessage;
      let finished = false;
      s.on('data', (m: ProcessingRequest) => answer(s, m));
      s.on('finish', () => (finished = true));
      // grpc-js reports a stream cancelled once it is over, however it ended.
      s.on('cancelled', () => (seen.cutOff = !finished));
      s.on('end', () => {
        seen.ended = true;
        if (endsItsSide) s.end();
      });
      s.on('error', () => {});
    },
  });
  const port = await new Promise<number>((resolve, reject) => ext.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  address = `127.0.0.1:${port}`;
  gw = await startGateway({ configPaths: [], manifests: poolAndModel([stub.url]), ...LOOPBACK });
});

after(async () => {
  process.off('unhandledRejection', onUnhandled);
  for (const e of extensions) e.close();
  await gw?.close();
  await stub?.close();
  ext?.forceShutdown();
});

describe('a STREAMED body the extension fails on, or refuses, before its last piece', () => {
  const big = 'x'.repeat(100_000);
  const silentOnBodies = (s: Stream, m: ProcessingRequest) => {
    if (!m.request!.endsWith('_body')) pass(s, m);
  };

  test('no answer to the pieces, failOpen true → the request goes on, the process with it', async () => {
    onMessage = silentOnBodies;
    use({ supportedEvents: ['RequestHeaders', 'RequestBody'], requestBodySendMode: 'STREAMED', timeoutMs: 100, failOpen: true });
    const r = await chat(big);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.echo.messages[0].content, big);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(unhandled, []);
  });

  test('no answer to the pieces, failOpen false → 500 extension_failed', async () => {
    onMessage = silentOnBodies;
    use({ supportedEvents: ['RequestHeaders', 'RequestBody'], requestBodySendMode: 'STREAMED', timeoutMs: 100 });
    const r = await chat(big);
    assert.equal(codeOf(r), 'extension_failed');
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(unhandled, []);
  });

  test('a verdict on the first piece reaches the client', async () => {
    onMessage = (s, m) => (m.request === 'request_body' ? s.write({ immediate_response: { status: { code: 403 }, body: Buffer.from('no') } }) : pass(s, m));
    use({ supportedEvents: ['RequestHeaders', 'RequestBody'], requestBodySendMode: 'STREAMED' });
    const r = await chat(big);
    assert.equal(r.status, 403);
    assert.equal(r.body, 'no');
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(unhandled, []);
  });

  test('no answer to the pieces of a large answer, failOpen true → the answer as the model server gave it', async () => {
    onMessage = silentOnBodies;
    use({ supportedEvents: ['ResponseBody'], responseBodySendMode: 'STREAMED', timeoutMs: 100, failOpen: true });
    const r = await chat(big);
    assert.equal(r.status, 200);
    assert.equal(r.body.echo.messages[0].content, big);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(unhandled, []);
  });
});

describe('an immediate response HTTP cannot carry', () => {
  const refuse = (statusCode: number, headers: ReturnType<typeof setHeader>[] = []) => (s: Stream, m: ProcessingRequest) =>
    s.write(m.request === 'request_headers' ? { immediate_response: { status: { code: statusCode }, headers: { set_headers: headers }, body: Buffer.from('refused') } } : ({ [m.request!]: {} } as ProcessingResponse));

  for (const code of [99, 100, 1000]) {
    test(`status ${code}, failOpen false → 500 extension_failed, counted as an invalid response`, async () => {
      onMessage = refuse(code);
      use({ name: `status-${code}` });
      const r = await chat();
      assert.equal(r.status, 500);
      assert.equal(codeOf(r), 'extension_failed');
      assert.equal(await metric('tollgate_extproc_client_failures_total', `extension="status-${code}",reason="invalid_response"`), 1);
    });
  }

  test('status 99, failOpen true → the request goes on without the extension', async () => {
    onMessage = refuse(99);
    use({ failOpen: true });
    assert.equal((await chat()).status, 200);
  });

  test('a header with a line break, a bad name, or framing: left out of the answer, which reaches the client', async () => {
    onMessage = refuse(403, [setHeader('x-why', 'a\r\nset-cookie: evil=1'), setHeader('bad name', '1'), setHeader('transfer-encoding', 'chunked'), setHeader('content-length', '1'), setHeader('x-ok', 'yes')]);
    use({});
    const r = await chat();
    assert.equal(r.status, 403);
    assert.equal(r.body, 'refused');
    assert.equal(r.headers['x-ok'], 'yes');
    assert.equal(r.headers['content-length'], '7');
    for (const name of ['x-why', 'set-cookie', 'bad name', 'transfer-encoding']) assert.equal(r.headers[name], undefined, name);
  });

  test('the data plane itself: a hook\'s answer with a status or header node:http refuses is a 500, or loses the header', async () => {
    gw.dataPlane.hooks = {
      intercept: (ctx) => {
        ctx.directResponse = { status: ctx.headers['x-status'] ? Number(ctx.headers['x-status']) : 200, headers: { 'x-bad': 'a\nb', 'x-ok': '1' }, body: 'direct' };
      },
    };
    const bad = await call(gw.url, 'POST', '/v1/chat/completions', {}, { 'x-status': '99' });
    assert.equal(bad.status, 500);
    assert.equal(codeOf(bad), 'internal_error');
    const good = await call(gw.url, 'POST', '/v1/chat/completions', {});
    assert.deepEqual([good.status, good.body, good.headers['x-ok'], good.headers['x-bad']], [200, 'direct', '1', undefined]);
  });
});

describe('an extension that does not end its side of the stream', () => {
  after(() => (endsItsSide = true));

  test('tollgate cancels the stream once the extension\'s timeout has passed after its own end', async () => {
    onMessage = pass;
    endsItsSide = false;
    use({ timeoutMs: 100 });
    const from = streams.length;
    for (let i = 0; i < 3; i++) assert.equal((await chat()).status, 200);
    const mine = streams.slice(from);
    assert.equal(mine.length, 3);
    await until(async () => mine.filter((s) => s.ended && s.cutOff).length, (n) => n === 3, 2000, 'streams cut off');
  });

  test('an extension that ends its side is not cancelled', async () => {
    onMessage = pass;
    endsItsSide = true;
    use({ timeoutMs: 100 });
    const from = streams.length;
    assert.equal((await chat()).status, 200);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(streams.slice(from), [{ ended: true, cutOff: false }]);
  });
});

describe('an extension that closes its stream', () => {
  const events: ExtensionOptions['supportedEvents'] = ['RequestHeaders', 'RequestBody', 'ResponseHeaders'];

  test('cleanly after its first answer: the request goes on with that answer, and without it after; counted apart from failures', async () => {
    onMessage = (s) => {
      s.write({ request_headers: { response: { header_mutation: { set_headers: [setHeader('x-checked', 'yes')] } } } });
      s.end();
    };
    use({ name: 'closes', supportedEvents: events });
    const before = stub.requests.length;
    const r = await chat();
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(stub.requests.length, before + 1);
    assert.equal(stub.requests.at(-1)!.req.headers['x-checked'], 'yes');
    assert.equal(await metric('tollgate_extproc_client_closed_streams_total', 'extension="closes"'), 1);
    assert.equal(await metric('tollgate_extproc_client_failures_total', 'extension="closes",reason="error"'), 0);
  });

  test('cleanly before answering anything: the request goes on unchanged', async () => {
    onMessage = (s) => s.end();
    use({ name: 'closes-at-once', supportedEvents: events });
    const r = await chat();
    assert.equal(r.status, 200, JSON.stringify(r.body));
  });

  test('with an error: 500 extension_failed, counted as a failure', async () => {
    onMessage = (s) => s.emit('error', { code: status.INTERNAL, details: 'boom' });
    use({ name: 'errs', supportedEvents: events });
    const r = await chat();
    assert.equal(codeOf(r), 'extension_failed');
    assert.equal(await metric('tollgate_extproc_client_failures_total', 'extension="errs",reason="error"'), 1);
  });
});
