// The data plane end to end over loopback: a real gateway in front of scriptable stub model servers.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { request } from 'undici';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { freePort } from '../src/lib/ports.js';
import { IDLE_METRICS, json, queuedMetrics, sleep, startStub, type StubRequest } from './helpers/stub-upstream.js';
import { manifest, poolAndModel, settings } from './helpers/manifests.js';
import { untilEndpoints } from './helpers/pool-ready.js';
import { waitFor } from '../src/sim/testing.js';
import type { EndpointView } from '../src/scheduler/fleet-view.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const CHAT = { model: 'm', messages: [{ role: 'user', content: 'hello' }] };

/** A gateway on loopback whose picker has scraped every endpoint and found it `settled` (by default: ready). */
async function gatewayFor(manifests: ReturnType<typeof poolAndModel>, settled?: (e: EndpointView) => boolean): Promise<Gateway> {
  const gw = await startGateway({ configPaths: [], manifests, ...LOOPBACK });
  await untilEndpoints(gw, settled);
  return gw;
}

/** A model server that starts an SSE answer with `sent` and then drops the connection. */
function diesMidStream(sent: string) {
  return async ({ res }: StubRequest) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(sent);
    await sleep(30);
    res.socket!.destroy();
  };
}

function post(gw: Gateway, body: unknown, headers: Record<string, string> = {}, path = '/v1/chat/completions') {
  return request(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

describe('requests and errors', async () => {
  const stub = await startStub();
  const gw = await gatewayFor([...poolAndModel([stub.url], 'm', { targetModels: [{ name: 'target-a', weight: 1 }] }), settings({ server: { maxBodyBytes: 2048 } })]);
  after(async () => {
    await gw.close();
    await stub.close();
  });

  test('proxies a chat completion, rewrites the model, passes other fields through', async () => {
    const r = await post(gw, { ...CHAT, tools: [{ type: 'function', function: { name: 'f' } }], n: 2 }, { 'x-request-id': 'req-123' });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['x-request-id'], 'req-123');
    const body = (await r.body.json()) as any;
    assert.equal(body.echo.model, 'target-a');
    assert.deepEqual(body.echo.tools, [{ type: 'function', function: { name: 'f' } }]);
    assert.equal(body.echo.n, 2);
    assert.equal(stub.requests.at(-1)!.req.headers['x-request-id'], 'req-123');
  });

  test('a body the gateway changes keeps the integers beyond 2^53 it did not touch (a 64-bit seed) as the client wrote them', async () => {
    const r = await post(gw, `{"model":"m","messages":[{"role":"user","content":"hello"}],"seed":12345678901234567890,"logit_bias":{"1":-100}}`);
    assert.equal(r.statusCode, 200);
    await r.body.dump();
    const sent = stub.requests.at(-1)!.raw;
    assert.match(sent, /"model":"target-a"/, 'the model was rewritten');
    assert.match(sent, /"seed":12345678901234567890[,}]/, sent);
  });

  test('a request target in absolute form is served as its path; Proxy-Authorization is not passed on', async () => {
    const body = JSON.stringify(CHAT);
    const answer = await new Promise<string>((resolve) => {
      const sock = connect(gw.port, '127.0.0.1', () => {
        sock.write(
          `POST http://gateway.example/v1/chat/completions HTTP/1.1\r\nhost: gateway.example\r\nconnection: close\r\n` +
            `proxy-authorization: Basic c2VjcmV0OnB3\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
        );
      });
      let data = '';
      sock.on('data', (d) => (data += d));
      sock.on('close', () => resolve(data));
    });
    // Before: 404 route_not_found (RFC 9112 §3.2.2: a server must accept the absolute form), and the proxy's
    // credentials reached the model server.
    assert.match(answer, /^HTTP\/1\.1 200/);
    const seen = stub.requests.at(-1)!.req;
    assert.equal(seen.url, '/v1/chat/completions');
    assert.equal(seen.headers['proxy-authorization'], undefined);
  });

  test("the client's address is appended to X-Forwarded-For", async () => {
    for (const [given, sent] of [
      [undefined, '127.0.0.1'],
      ['203.0.113.7', '203.0.113.7, 127.0.0.1'],
    ] as const) {
      const r = await post(gw, CHAT, given ? { 'x-forwarded-for': given } : {});
      await r.body.dump();
      assert.equal(stub.requests.at(-1)!.req.headers['x-forwarded-for'], sent);
    }
  });

  test('generates a request id when none is given', async () => {
    const r = await post(gw, CHAT);
    await r.body.dump();
    assert.match(String(r.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  });

  const faults: { name: string; body: unknown; status: number; code: string; path?: string }[] = [
    { name: 'malformed JSON', body: '{"model": "m", ', status: 400, code: 'invalid_json' },
    { name: 'not an object', body: '[1,2]', status: 400, code: 'invalid_request' },
    { name: 'no model', body: { messages: [] }, status: 400, code: 'missing_model' },
    { name: 'model not a string', body: { model: 42, messages: CHAT.messages }, status: 400, code: 'invalid_request' },
    { name: 'messages not an array', body: { model: 'm', messages: 'hi' }, status: 400, code: 'invalid_request' },
    { name: 'content part without type', body: { model: 'm', messages: [{ role: 'user', content: [{ text: 'x' }] }] }, status: 400, code: 'invalid_request' },
    { name: 'max_tokens not positive', body: { ...CHAT, max_tokens: 0 }, status: 400, code: 'invalid_request' },
    { name: 'max_completion_tokens fractional', body: { ...CHAT, max_completion_tokens: 1.5 }, status: 400, code: 'invalid_request' },
    { name: 'stream not boolean', body: { ...CHAT, stream: 'yes' }, status: 400, code: 'invalid_request' },
    { name: 'unknown model', body: { ...CHAT, model: 'nope' }, status: 404, code: 'model_not_found' },
    { name: 'body too large', body: { ...CHAT, pad: 'x'.repeat(4096) }, status: 413, code: 'body_too_large' },
    { name: 'unknown path', body: CHAT, status: 404, code: 'route_not_found', path: '/v2/whatever' },
  ];
  for (const f of faults) {
    test(`${f.name} → ${f.status} ${f.code}`, async () => {
      const r = await post(gw, f.body, {}, f.path);
      assert.equal(r.statusCode, f.status);
      const body = (await r.body.json()) as any;
      assert.equal(body.error.code, f.code);
      assert.equal(typeof body.error.message, 'string');
      assert.equal(typeof body.error.type, 'string');
    });
  }

  test('content-part arrays are accepted', async () => {
    const r = await post(gw, { model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] });
    assert.equal(r.statusCode, 200);
    await r.body.dump();
  });

  test('GET /v1/models lists configured models in the OpenAI shape', async () => {
    const r = await request(`${gw.url}/v1/models`);
    const body = (await r.body.json()) as any;
    assert.equal(body.object, 'list');
    assert.deepEqual(body.data.map((m: any) => m.id), ['m']);
    assert.equal(body.data[0].object, 'model');
  });

  test('readyz and healthz on the admin port', async () => {
    const h = await request(`${gw.adminUrl}/healthz`);
    assert.equal(h.statusCode, 200);
    await h.body.dump();
    const r = await request(`${gw.adminUrl}/readyz`);
    assert.equal(r.statusCode, 200);
    assert.equal(((await r.body.json()) as any).ready, true);
  });
});

describe('weighted target models through the gateway', async () => {
  const stub = await startStub();
  const gw = await gatewayFor(poolAndModel([stub.url], 'm', { targetModels: [{ name: 'a', weight: 3 }, { name: 'b', weight: 1 }] }));
  after(async () => {
    await gw.close();
    await stub.close();
  });
  test('about 3:1 over 400 requests', async () => {
    const counts: Record<string, number> = { a: 0, b: 0 };
    for (let i = 0; i < 400; i++) {
      const r = await post(gw, CHAT);
      counts[((await r.body.json()) as any).echo.model]++;
    }
    // Binomial(400, 0.75): mean 300, sd 8.7; ±5 sd.
    assert.ok(counts.a > 256 && counts.a < 344, JSON.stringify(counts));
  });
});

describe('streaming', async () => {
  const stub = await startStub();
  const gw = await gatewayFor(poolAndModel([stub.url]));
  after(async () => {
    await gw.close();
    await stub.close();
  });

  test('chunks pass through one by one, before the upstream has finished', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    stub.handler = async ({ res }) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[{"delta":{"content":"one"}}]}\n\n');
      await gate;
      res.write('data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n');
      res.end('data: [DONE]\n\n');
    };
    const r = await post(gw, { ...CHAT, stream: true });
    assert.equal(r.headers['content-type'], 'text/event-stream');
    const it = r.body[Symbol.asyncIterator]();
    const first = await it.next();
    assert.match(String(first.value), /"one"/);
    release();
    let rest = '';
    for (let n = await it.next(); !n.done; n = await it.next()) rest += n.value;
    assert.match(rest, /\[DONE\]/);
  });

  test('a client that goes away aborts the upstream request', async () => {
    let upstreamClosed!: () => void;
    const closed = new Promise<void>((r) => (upstreamClosed = r));
    stub.handler = ({ res }) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[{"delta":{"content":"x"}}]}\n\n');
      const timer = setInterval(() => res.write('data: {"choices":[{"delta":{"content":"x"}}]}\n\n'), 20);
      res.on('close', () => {
        clearInterval(timer);
        upstreamClosed();
      });
    };
    const r = await post(gw, { ...CHAT, stream: true }, {});
    const it = r.body[Symbol.asyncIterator]();
    await it.next();
    r.body.destroy();
    await Promise.race([closed, sleep(3000).then(() => assert.fail('upstream request was not aborted'))]);
  });

  test('a client that leaves before the model server answers does not take the endpoint out', async () => {
    const answer = (res: StubRequest['res']) => json(res, 200, { choices: [], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } });
    let upstreamClosed!: () => void;
    const givenUp = new Promise<void>((r) => (upstreamClosed = r));
    stub.handler = async ({ res }) => {
      res.on('close', upstreamClosed);
      await sleep(300);
      answer(res);
    };
    const sent = stub.requests.length;
    const abort = new AbortController();
    const gone = request(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(CHAT), signal: abort.signal });
    await waitFor(() => stub.requests.length > sent, 5000, 'the request to reach the model server');
    abort.abort();
    await assert.rejects(gone);
    // The gateway sees the close and gives the attempt up, closing its upstream request.
    await Promise.race([givenUp, sleep(5000).then(() => assert.fail('the upstream request was not given up'))]);
    stub.handler = ({ res }) => answer(res);
    // Before the fix, the abandoned attempt counted as "could not reach it": 503 until the next scrape.
    const next = await post(gw, CHAT);
    assert.equal(next.statusCode, 200, await next.body.text());
  });

  test('an upstream that dies mid-stream ends the stream with an SSE error event', async () => {
    stub.handler = diesMidStream('data: {"choices":[{"delta":{"content":"partial"}}]}\n\n');
    const r = await post(gw, { ...CHAT, stream: true });
    const text = await r.body.text();
    assert.match(text, /partial/);
    assert.match(text, /data: \{"error":\{"message":".*","type":"server_error","code":"upstream_error"\}\}\n\n$/);
  });

  test('events split across chunks, in LF, CRLF or CR lines, reach the client whole and in order', async () => {
    for (const nl of ['\n', '\r\n', '\r']) {
      stub.handler = async ({ res }) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(`data: {"a"`);
        await sleep(60);
        res.write(`:1}${nl}${nl}data: {"b":2}${nl}`);
        await sleep(60);
        res.end(`${nl}data: [DONE]${nl}${nl}`);
      };
      const r = await post(gw, { ...CHAT, stream: true });
      const received: string[] = [];
      for await (const c of r.body) received.push(String(c));
      // tollgate reads every stream (for its usage) and passes each event on whole, its lines ended by LF.
      assert.equal(received.join(''), 'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n', JSON.stringify(nl));
      // Before: the half event went out at once, as the first bytes.
      assert.ok(received[0].startsWith('data: {"a":1}'), `the first bytes are a whole event: ${JSON.stringify(received[0])}`);
    }
  });

  test('an upstream that dies in the middle of an event: the half event is never sent, the error event comes after the whole ones', async () => {
    stub.handler = diesMidStream('data: {"choices":[{"delta":{"content":"whole"}}]}\n\ndata: {"id":"x","choi');
    const r = await post(gw, { ...CHAT, stream: true });
    const events = (await r.body.text()).split('\n\n').filter((e) => e.trim() !== '');
    // Before: `data: {"id":"x","choidata: {"error":...}}`, one line an SDK cannot parse; then the half event as one
    // of its own, still JSON no SDK parses.
    assert.equal(events.length, 2);
    assert.equal(events[0], 'data: {"choices":[{"delta":{"content":"whole"}}]}');
    const last = JSON.parse(events[1].slice('data: '.length)) as { error: { code: string } };
    assert.equal(last.error.code, 'upstream_error');
  });
});

describe('retries before the first byte', async () => {
  const dead = `http://127.0.0.1:${await freePort()}`;
  const busy = await startStub((r) => json(r.res, 503, { error: 'busy' }));
  const limited = await startStub((r) => json(r.res, 429, { error: { message: 'slow down' } }, { 'retry-after': '7' }));
  const good = await startStub();
  const gateways: Gateway[] = [];
  after(async () => {
    await Promise.all(gateways.map((g) => g.close()));
    await Promise.all([busy.close(), limited.close(), good.close()]);
  });

  // A refused connection that moves on is tested in gateway-resilience.test.ts: an endpoint that refuses from the
  // start fails its first scrape and is never offered (see the no_healthy_endpoints test below).
  test('a 503 moves on to the next endpoint', async () => {
    // Two queued requests on the good one: the picker offers the (idle-looking) busy one first.
    good.metrics = queuedMetrics(2);
    const gw = await gatewayFor(poolAndModel([busy.url, good.url]));
    gateways.push(gw);
    const [tried, served] = [busy.requests.length, good.requests.length];
    const r = await post(gw, CHAT);
    assert.equal(r.statusCode, 200);
    await r.body.dump();
    assert.deepEqual([busy.requests.length - tried, good.requests.length - served], [1, 1]);
    // Having answered 503, the busy one rests (others first): the next requests go straight to the good one.
    for (let i = 0; i < 2; i++) {
      const again = await post(gw, { ...CHAT, messages: [{ role: 'user', content: `question ${i}` }] });
      assert.equal(again.statusCode, 200);
      await again.body.dump();
    }
    assert.equal(good.requests.length - served, 3);
    good.metrics = IDLE_METRICS;
  });

  for (const [what, head] of [
    ['is not HTTP', 'HTTP/1.1 200 OK\r\ncontent-length: abc\r\n\r\n'],
    ['frames its body with both Content-Length and Transfer-Encoding', 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['gives two different lengths', 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}'],
  ] as const) {
  test(`an answer whose head ${what} moves on to the next endpoint; from the last one it is a 502 upstream_error`, async () => {
    const garbled = await startStub((r) => void r.res.socket!.end(head));
    try {
      good.metrics = queuedMetrics(2);
      const gw = await gatewayFor(poolAndModel([garbled.url, good.url]));
      gateways.push(gw);
      const served = good.requests.length;
      const r = await post(gw, CHAT);
      // Before: 503 upstream_unavailable ("could not be reached") from the first endpoint, the second never tried.
      assert.equal(r.statusCode, 200, await r.body.text());
      assert.equal(garbled.requests.length, 1);
      assert.equal(good.requests.length, served + 1);
      good.metrics = IDLE_METRICS;
      const alone = await gatewayFor(poolAndModel([garbled.url]));
      gateways.push(alone);
      // Twice: the server answered, so it stays in the pool (before, the second was 503 no_healthy_endpoints).
      for (let i = 0; i < 2; i++) {
        const failed = await post(alone, CHAT);
        assert.equal(failed.statusCode, 502);
        const body = (await failed.body.json()) as { error: { code: string; message: string } };
        assert.equal(body.error.code, 'upstream_error');
        assert.match(body.error.message, /not valid HTTP/);
      }
    } finally {
      good.metrics = IDLE_METRICS;
      await garbled.close();
    }
  });
  }

  test('when every endpoint answers 429, the last one passes through with retry-after', async () => {
    const gw = await gatewayFor(poolAndModel([limited.url]));
    gateways.push(gw);
    const r = await post(gw, CHAT);
    assert.equal(r.statusCode, 429);
    assert.equal(r.headers['retry-after'], '7');
    await r.body.dump();
  });

  test('every endpoint unreachable → 503 no_healthy_endpoints (the picker knows from its scrapes)', async () => {
    const gw = await gatewayFor(poolAndModel([dead]), (e) => e.status === 'unhealthy');
    gateways.push(gw);
    const r = await post(gw, CHAT);
    assert.equal(r.statusCode, 503);
    assert.equal(((await r.body.json()) as any).error.code, 'no_healthy_endpoints');
  });
});

describe('timeouts', async () => {
  const slow = await startStub(async ({ res }) => {
    await sleep(1500);
    json(res, 200, {});
  });
  const gw = await gatewayFor([
    ...poolAndModel([slow.url], 'm', { timeouts: { firstByte: '200ms' } }),
    settings({ server: { bodyTimeout: '300ms' } }),
  ]);
  after(async () => {
    await gw.close();
    await slow.close();
  });

  test('no first byte of a stream in time → 504 upstream_timeout', async () => {
    const r = await post(gw, { ...CHAT, stream: true });
    assert.equal(r.statusCode, 504);
    assert.equal(((await r.body.json()) as any).error.code, 'upstream_timeout');
  });

  test('a non-streamed answer, whose first byte comes with its last, is held to the whole-answer limit only', async () => {
    // Before: a 504 after the first-byte limit for a generation that succeeds against the model server directly.
    const r = await post(gw, CHAT);
    assert.equal(r.statusCode, 200);
    await r.body.dump();
  });

  test('a client that sends its body too slowly gets 408', async () => {
    const answer = await new Promise<string>((resolve) => {
      const sock = connect(gw.port, '127.0.0.1', () => {
        sock.write('POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"model":');
      });
      let data = '';
      sock.on('data', (d) => (data += d));
      sock.on('close', () => resolve(data));
      sock.on('error', () => resolve(data));
    });
    assert.match(answer, /^HTTP\/1\.1 408/);
    assert.match(answer, /"code":"request_timeout"/);
  });
});

describe('graceful shutdown', () => {
  test('in-flight requests finish; new connections are refused', async () => {
    const stub = await startStub(async ({ res }) => {
      await sleep(300);
      json(res, 200, { done: true });
    });
    const gw = await gatewayFor(poolAndModel([stub.url]));
    const inflight = post(gw, CHAT);
    await waitFor(() => stub.requests.length === 1, 5000, 'the request to reach the model server');
    // close() stops listening before its first await.
    const closing = gw.close();
    await assert.rejects(post(gw, CHAT));
    const r = await inflight;
    assert.equal(r.statusCode, 200);
    assert.deepEqual(await r.body.json(), { done: true });
    await closing;
    await stub.close();
  });
});

describe('routes', async () => {
  const stub = await startStub();
  const other = await startStub((r) => json(r.res, 200, { from: 'other', path: r.req.url }));
  const gw = await gatewayFor([
    ...poolAndModel([stub.url]),
    manifest('HTTPRoute', 'r', {
      rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/custom' } }], backendRefs: [{ url: other.url }] },
        { matches: [{ path: { value: '/v1' } }], backendRefs: [{ kind: 'InferencePool', name: 'pool' }] },
      ],
    }),
  ]);
  after(async () => {
    await gw.close();
    await stub.close();
    await other.close();
  });
  test('a path match sends the request to a URL backend', async () => {
    const r = await post(gw, { anything: true }, {}, '/custom/thing?x=1');
    assert.deepEqual(await r.body.json(), { from: 'other', path: '/custom/thing?x=1' });
  });
  test('OpenAI paths still route by model through the pool', async () => {
    const r = await post(gw, CHAT);
    assert.equal(((await r.body.json()) as any).echo.model, 'm');
  });
});
