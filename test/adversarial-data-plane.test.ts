// The data plane against hostile clients and broken model servers, end to end over loopback: every refusal is an
// answer in the documented shape (OpenAI error body, x-request-id), and the gateway keeps serving afterwards.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { pino } from 'pino';
import { request } from 'undici';
import { waitFor } from '../src/sim/testing.js';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { json, startStub, type Stub, type StubRequest } from './helpers/stub-upstream.js';
import { poolAndModel, settings } from './helpers/manifests.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const CHAT = { model: 'm', messages: [{ role: 'user', content: 'hello' }] };
const BOUNDED = { timeout: 30_000 };

interface ErrorBody {
  error: { message: string; type: string; code: string };
}

describe('hostile input and broken model servers', () => {
  let stub: Stub;
  let gw: Gateway;
  /** How the stub answers the next inference request; a plain JSON answer unless a test says otherwise. */
  let answer: (r: StubRequest) => void;
  /** What the gateway logs (its access log among it). */
  const lines: { msg: string; requestId?: string; outputTokens?: number }[] = [];
  const plain = (r: StubRequest) => json(r.res, 200, { ok: true, usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } });

  before(async () => {
    stub = await startStub((r) => answer(r));
    // No retries and a short whole-response deadline, so each broken answer is the one the client hears about.
    const spec = settings({ upstream: { maxRetries: 0, responseTimeout: '1500ms' } });
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) });
    gw = await startGateway({ configPaths: [], manifests: [...poolAndModel([stub.url]), spec], ...LOOPBACK, logger });
  });
  after(async () => {
    await gw.close();
    await stub.close();
  });

  async function post(path: string, body: string | object, headers: Record<string, string> = {}): Promise<{ status: number; requestId: unknown; text: string }> {
    const r = await request(`${gw.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    return { status: r.statusCode, requestId: r.headers['x-request-id'], text: await r.body.text() };
  }

  /** The answer is a documented fault with this status and code; then a normal request still works. */
  async function assertFault(got: { status: number; requestId: unknown; text: string }, status: number, code: string): Promise<void> {
    assert.equal(got.status, status, got.text);
    assert.equal(typeof got.requestId, 'string');
    const body = JSON.parse(got.text) as ErrorBody;
    assert.equal(body.error.code, code, got.text);
    assert.equal(typeof body.error.message, 'string');
    assert.equal(typeof body.error.type, 'string');
    answer = plain;
    const ok = await post('/v1/chat/completions', CHAT);
    assert.equal(ok.status, 200, `the gateway serves again afterwards: ${ok.text}`);
  }

  test('a Responses input nested 100k levels deep is a 400, not a 500 from a stack overflow', BOUNDED, async () => {
    const deep = `{"model":"m","input":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    await assertFault(await post('/v1/responses', deep), 400, 'invalid_request');
  });

  test('a model server that sends its head and dies before the body gets the client a 502, not a dropped connection', BOUNDED, async () => {
    answer = (r) => {
      r.res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      r.res.flushHeaders();
      setTimeout(() => r.res.destroy(), 50);
    };
    await assertFault(await post('/v1/chat/completions', CHAT), 502, 'upstream_error');
  });

  test('a model server that sends its head and then nothing gets the client a 504 at the response deadline', BOUNDED, async () => {
    answer = (r) => {
      r.res.writeHead(200, { 'content-type': 'application/json' });
      r.res.flushHeaders();
    };
    await assertFault(await post('/v1/chat/completions', CHAT), 504, 'upstream_timeout');
  });

  test('an event stream that dies before its first event is a 502 in the error shape', BOUNDED, async () => {
    answer = (r) => {
      r.res.writeHead(200, { 'content-type': 'text/event-stream' });
      r.res.flushHeaders();
      setTimeout(() => r.res.destroy(), 50);
    };
    await assertFault(await post('/v1/chat/completions', { ...CHAT, stream: true }), 502, 'upstream_error');
  });

  test('an event stream that dies after its first event still ends with an SSE error event', BOUNDED, async () => {
    answer = (r) => {
      r.res.writeHead(200, { 'content-type': 'text/event-stream' });
      r.res.write('data: {"choices":[{"delta":{"content":"a"}}]}\n\n');
      setTimeout(() => r.res.destroy(), 50);
    };
    const got = await post('/v1/chat/completions', { ...CHAT, stream: true });
    assert.equal(got.status, 200);
    assert.match(got.text, /^data: \{"choices".*\n\ndata: \{"error":\{"message":".*","type":"server_error","code":"upstream_error"\}\}\n\n$/s);
  });

  test('a client asking for gzip cannot hide the answer from token accounting (and response policies)', BOUNDED, async () => {
    // A model server (or a proxy in front of it) that compresses whenever the request accepts gzip.
    answer = (r) => {
      const text = JSON.stringify({ choices: [{ message: { content: 'hi' } }], usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 } });
      const gzip = /gzip/.test(String(r.req.headers['accept-encoding'] ?? ''));
      const body = gzip ? gzipSync(text) : Buffer.from(text);
      r.res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length), ...(gzip && { 'content-encoding': 'gzip' }) });
      r.res.end(body);
    };
    const got = await post('/v1/chat/completions', CHAT, { 'accept-encoding': 'gzip, deflate', 'x-request-id': 'asks-for-gzip' });
    assert.equal(got.status, 200);
    assert.equal((JSON.parse(got.text) as { usage: { completion_tokens: number } }).usage.completion_tokens, 7);
    await waitFor(() => lines.some((l) => l.msg === 'request' && l.requestId === 'asks-for-gzip'), 5000, 'the access log line');
    assert.equal(lines.find((l) => l.msg === 'request' && l.requestId === 'asks-for-gzip')!.outputTokens, 7);
  });

  test('a path with a dot segment or an encoded slash is a 400, not resolved by whatever server is behind', BOUNDED, async () => {
    // node:http sends the path as given (fetch and undici resolve `..` before sending).
    const raw = (path: string) =>
      new Promise<{ status: number; requestId: unknown; text: string }>((resolve, reject) => {
        const req = httpRequest(`${gw.url}/`, { method: 'POST', path, headers: { 'content-type': 'application/json' }, agent: false }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve({ status: res.statusCode!, requestId: res.headers['x-request-id'], text }));
        });
        req.on('error', reject).end(JSON.stringify(CHAT));
      });
    await assertFault(await raw('/v1/chat/../chat/completions'), 400, 'invalid_request');
    await assertFault(await raw('/v1/chat%2Fcompletions'), 400, 'invalid_request');
  });

  test('a client\'s identity headers never reach the model server (tollgate sets them, from API management, when it knows them)', BOUNDED, async () => {
    let upstreamSaw: Record<string, unknown> = {};
    answer = (r) => {
      upstreamSaw = { ...r.req.headers };
      plain(r);
    };
    assert.equal((await post('/v1/chat/completions', CHAT, { 'x-tollgate-app': 'spoofed', 'x-tollgate-developer': 'someone' })).status, 200);
    assert.equal(upstreamSaw['x-tollgate-app'], undefined);
    assert.equal(upstreamSaw['x-tollgate-developer'], undefined);
  });

  test('headers a Connection header lists are hop-by-hop: neither the client\'s reach the model server nor the model server\'s the client', BOUNDED, async () => {
    let upstreamSaw: Record<string, unknown> = {};
    answer = (r) => {
      upstreamSaw = { ...r.req.headers };
      r.res.writeHead(200, { 'content-type': 'application/json', connection: 'keep-alive, x-upstream-hop', 'x-upstream-hop': 'internal', 'x-kept': 'yes' });
      r.res.end(JSON.stringify({ ok: true }));
    };
    // node:http, not undici: undici does not send a Connection header listing other headers.
    const r = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpRequest(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', connection: 'keep-alive, X-Client-Hop', 'x-client-hop': 'secret-ish', 'x-forwarded-on': 'yes' },
        agent: false,
      });
      req.on('response', resolve).on('error', reject);
      req.end(JSON.stringify(CHAT));
    });
    r.resume();
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['x-upstream-hop'], undefined);
    assert.equal(r.headers['x-kept'], 'yes');
    assert.equal(upstreamSaw['x-client-hop'], undefined);
    assert.equal(upstreamSaw['x-forwarded-on'], 'yes');
  });
});
