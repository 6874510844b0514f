// The proxy on its own, between a real upstream and client: the commit step (an answer is not complete for the client
// until commit lets its last bytes go), requests and headers a policy made unsendable, compressed answers, the
// first-byte limit and TTFT, malformed heads, SSE framing, what a cut stream is recorded as and how the client sees
// the cut (an error event, or the connection closed where one cannot be sent).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import net, { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { constants as zlib, createGzip, gunzipSync, gzipSync } from 'node:zlib';
import { request } from 'undici';
import { DEFAULT_SETTINGS } from '../config/settings.js';
import { CompletionText } from './completion-text.js';
import type { RequestContext } from './context.js';
import { newContext } from './data-plane.js';
import { proxyRequest, type ProxyTarget } from './proxy.js';
import { UpstreamPools } from './upstream-pools.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function listen(server: Server | NetServer): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as { port: number }).port}`)));
}

/**
 * A gateway in front of `upstreamUrl` that proxies every request with these target fields (over one endpoint, one
 * attempt, generous deadlines), its context set up by `setup` (as the data plane's policies leave it); a fault the
 * proxy returns is answered with its status and code.
 */
async function throughProxy(upstreamUrl: string, pools: UpstreamPools, fields: (url: string) => Partial<ProxyTarget>, setup?: (ctx: RequestContext) => void): Promise<{ url: string; close: () => void; done: Promise<RequestContext> }> {
  let settled: (ctx: RequestContext) => void = () => {};
  const done = new Promise<RequestContext>((resolve) => (settled = resolve));
  const gateway = createServer((req, res) => {
    const ctx = newContext(req.method!, req.url!, req.headers, undefined);
    setup?.(ctx);
    void proxyRequest(ctx, res, pools, {
      endpoints: [{ url: upstreamUrl, address: new URL(upstreamUrl).host }],
      path: '/v1/chat/completions',
      headers: {},
      body: null,
      maxAttempts: 1,
      firstByteTimeoutMs: 5000,
      responseTimeoutMs: 5000,
      maxBodyBytes: 1 << 20,
      ...fields(req.url!),
    }).then(({ error }) => {
      if (error) res.writeHead(error.status).end(error.code);
      settled(ctx);
    });
  });
  return { url: await listen(gateway), close: () => gateway.close(), done };
}

for (const [name, headers] of [
  ['with a content-length', { 'content-type': 'application/json', 'content-length': '16' }],
  ['chunked', { 'content-type': 'application/json' }],
] as const) {
  test(`an answer ${name} is complete for the client only once commit sends its last bytes`, async () => {
    const upstream = createServer((req, res) => {
      req.resume();
      res.writeHead(200, headers);
      res.write('{"answer":');
      setTimeout(() => res.end('"yes"}'), 20);
    });
    const upstreamUrl = await listen(upstream);
    const pools = new UpstreamPools(DEFAULT_SETTINGS);
    let ends: (() => void) | undefined;
    const gateway = await throughProxy(upstreamUrl, pools, () => ({ commit: (end) => (ends = end) }));
    try {
      const r = await request(`${gateway.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
      let text = '';
      let done = false;
      const reading = (async () => {
        for await (const c of r.body) text += c;
        done = true;
      })();
      await new Promise((res) => setTimeout(res, 150));
      assert.ok(ends, 'the upstream answer ended and commit was asked');
      assert.equal(done, false, `the client already had the whole answer: ${text}`);
      ends!();
      await reading;
      assert.equal(text, '{"answer":"yes"}');
    } finally {
      gateway.close();
      upstream.close();
      await pools.close();
    }
  });
}

test('a header value a policy rendered with a line break: upstream, the request is a 400 and the endpoint stays healthy; on the answer, the header is left out', async () => {
  const upstream = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
  });
  const upstreamUrl = await listen(upstream);
  const pools = new UpstreamPools(DEFAULT_SETTINGS);
  const released: { reached: boolean; abandoned?: boolean }[] = [];
  const gateway = await throughProxy(upstreamUrl, pools, (url) => ({
    release: (_ep, outcome) => void released.push(outcome),
    headers: url.includes('bad-request') ? { 'x-copied': 'a\nb' } : ({} as Record<string, string>),
    respond: () => ({ headers: (_status, out) => Object.assign(out, { 'x-answer': 'c\r\nset-cookie: x=1', 'x-fine': 'yes' }) }),
  }));
  try {
    // Before: 503 upstream_unavailable, and the endpoint reported down for every other tenant.
    const refused = await request(`${gateway.url}/bad-request`, { method: 'POST', body: '{}' });
    assert.equal(refused.statusCode, 400, await refused.body.text());
    assert.deepEqual(released, [{ reached: false, abandoned: true, status: undefined, outputTokens: undefined }]);
    // Before: node:http refused the head, and the answer was lost.
    const answered = await request(`${gateway.url}/fine`, { method: 'POST', body: '{}' });
    assert.equal(answered.statusCode, 200);
    assert.equal(answered.headers['x-answer'], undefined);
    assert.equal(answered.headers['set-cookie'], undefined);
    assert.equal(answered.headers['x-fine'], 'yes');
    assert.equal(await answered.body.text(), '{"ok":true}');
  } finally {
    gateway.close();
    upstream.close();
    await pools.close();
  }
});

test('a connection this process cannot open (out of descriptors) is a 503 that leaves the endpoint in the pool', async (t) => {
  const upstream = createServer((req, res) => void req.resume().on('end', () => res.end('{}')));
  const upstreamUrl = await listen(upstream);
  const port = Number(new URL(upstreamUrl).port);
  const connect = net.connect;
  // undici opens its connections with net.connect: the one to the model server fails as a process out of descriptors does.
  t.mock.method(net, 'connect', (...args: Parameters<typeof net.connect>) => {
    if (Number((args[0] as { port?: unknown }).port) !== port) return connect(...args);
    const socket = new net.Socket();
    process.nextTick(() => socket.destroy(Object.assign(new Error('connect EMFILE'), { code: 'EMFILE', syscall: 'connect' })));
    return socket;
  });
  const pools = new UpstreamPools(DEFAULT_SETTINGS);
  const released: { reached: boolean; abandoned?: boolean }[] = [];
  const gateway = await throughProxy(upstreamUrl, pools, () => ({ release: (_ep, outcome) => void released.push(outcome) }));
  try {
    const r = await request(`${gateway.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
    assert.equal(r.statusCode, 503);
    assert.equal(await r.body.text(), 'upstream_unavailable');
    // Before: reported down, so every endpoint of the pool was taken out at once (503 no_healthy_endpoints).
    assert.deepEqual(released, [{ reached: false, abandoned: true, status: undefined, outputTokens: undefined }]);
  } finally {
    gateway.close();
    upstream.close();
    await pools.close();
  }
});

test('a compressed answer passes unread past a flow that only reads it (a cache filling), instead of a 502', async () => {
  const gzipped = gzipSync('{"choices":[]}');
  const upstream = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': gzipped.length }).end(gzipped));
  });
  const upstreamUrl = await listen(upstream);
  const pools = new UpstreamPools(DEFAULT_SETTINGS);
  let read = false;
  const gateway = await throughProxy(upstreamUrl, pools, () => ({ respond: () => ({ observes: true, body: (b) => ((read = true), b) }) }));
  try {
    const r = await request(`${gateway.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
    assert.equal(r.statusCode, 200);
    assert.equal(gunzipSync(Buffer.from(await r.body.arrayBuffer())).toString(), '{"choices":[]}');
    assert.equal(read, false, 'the flow never saw the compressed bytes');
  } finally {
    gateway.close();
    upstream.close();
    await pools.close();
  }
});

test('a flow that only reads the body (a cache filling) gets a copy, up to its limit, while the answer streams to the client', async () => {
  let release: () => void = () => {};
  const upstream = createServer((req, res) => {
    req.resume();
    const size = Number(new URL(req.url!, 'http://x').searchParams.get('size'));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': size + 2 });
    res.write('["');
    // The rest only once the client has the start: an answer held whole until its end would never get there.
    release = () => res.end('x'.repeat(size - 2) + '"]');
  });
  const upstreamUrl = await listen(upstream);
  const pools = new UpstreamPools(DEFAULT_SETTINGS);
  const read: number[] = [];
  const flow = () => ({ observes: true, observeLimit: 100_000, body: (b: Buffer) => (read.push(b.length), b) });
  // The body limit is 1 MiB: before, the 3 MB answer was a 502 "larger than a response policy can hold".
  const gateway = await throughProxy(upstreamUrl, pools, (path) => ({ path, respond: flow }));
  try {
    for (const size of [50_000, 3_000_000]) {
      const r = await request(`${gateway.url}/v1/chat/completions?size=${size}`, { method: 'POST', body: '{}' });
      assert.equal(r.statusCode, 200);
      assert.equal(r.headers['content-length'], String(size + 2), 'the head as the model server sent it');
      const chunks = r.body[Symbol.asyncIterator]();
      const first = await Promise.race([chunks.next(), sleep(2000).then(() => assert.fail('the answer was held'))]);
      let bytes = (first.value as Buffer).length;
      release();
      for (let c = await chunks.next(); !c.done; c = await chunks.next()) bytes += (c.value as Buffer).length;
      assert.equal(bytes, size + 2);
      await gateway.done;
    }
    assert.deepEqual(read, [50_002], 'the answer over the flow\'s limit was not copied');
  } finally {
    gateway.close();
    upstream.close();
    await pools.close();
  }
});

test('a compressed JSON answer reaches the client byte for byte, and its usage is read', async () => {
  const gzipped = gzipSync('{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}');
  const upstream = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(gzipped));
  });
  const upstreamUrl = await listen(upstream);
  const pools = new UpstreamPools(DEFAULT_SETTINGS);
  const gateway = await throughProxy(upstreamUrl, pools, () => ({}));
  try {
    const r = await request(`${gateway.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.deepEqual(Buffer.from(await r.body.arrayBuffer()), gzipped);
    // Before: none (a token quota kept its whole reservation).
    assert.deepEqual((await gateway.done).usage, { inputTokens: 3, outputTokens: 4, cachedTokens: 0 });
  } finally {
    gateway.close();
    upstream.close();
    await pools.close();
  }
});

test('a client that hangs up after the usage chunk of a stream leaves that usage counted (it was counted as none)', async () => {
  const upstream = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n');
    res.write('data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":21}}\n\n');
    // [DONE] never comes before the client leaves.
    const hold = setTimeout(() => res.end('data: [DONE]\n\n'), 5000);
    res.on('close', () => clearTimeout(hold));
  });
  const upstreamUrl = await listen(upstream);
  const pools = new UpstreamPools(DEFAULT_SETTINGS);
  let settled: ((usage: unknown) => void) | undefined;
  const usage = new Promise((resolve) => (settled = resolve));
  const gateway = createServer((req, res) => {
    const ctx = newContext(req.method!, req.url!, req.headers, undefined);
    const target = { endpoints: [{ url: upstreamUrl, address: new URL(upstreamUrl).host }], path: '/v1/chat/completions', headers: {}, body: null, maxAttempts: 1, firstByteTimeoutMs: 5000, responseTimeoutMs: 10_000, maxBodyBytes: 1 << 20 };
    void proxyRequest(ctx, res, pools, target).then(() => settled!(ctx.usage));
  });
  const url = await listen(gateway);
  try {
    const r = await request(`${url}/v1/chat/completions`, { method: 'POST', body: '{}' });
    let text = '';
    for await (const c of r.body) {
      text += c;
      if (text.includes('"usage"')) break;
    }
    assert.deepEqual(await usage, { inputTokens: 9, outputTokens: 21, cachedTokens: 0 });
  } finally {
    gateway.close();
    upstream.close();
    await pools.close();
  }
});

/** An upstream that sends its head at once, as uvicorn does for a stream (vLLM, SGLang), and its body from `body`. */
function headAtOnce(body: (res: ServerResponse) => void | Promise<void>): Server {
  return createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.flushHeaders();
    void body(res);
  });
}

test('the first-byte limit runs to the first body byte: a stream whose head came at once but no token in time is a clean 504', { timeout: 20_000 }, async () => {
  const upstream = headAtOnce(async (res) => {
    await sleep(1500);
    res.end('data: {"choices":[{"delta":{"content":"late"}}]}\n\ndata: [DONE]\n\n');
  });
  const upstreamUrl = await listen(upstream);
  const pools = new UpstreamPools(DEFAULT_SETTINGS);
  const released: { reached: boolean; abandoned?: boolean }[] = [];
  const gateway = await throughProxy(upstreamUrl, pools, () => ({ firstByteTimeoutMs: 200, responseTimeoutMs: 10_000, release: (_ep, outcome) => void released.push(outcome) }));
  try {
    const r = await request(`${gateway.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
    // Before: the head passed the limit, and the client waited for the late token (200, up to responseTimeout).
    assert.equal(r.statusCode, 504);
    assert.equal(await r.body.text(), 'upstream_timeout');
    const ctx = await gateway.done;
    assert.equal(ctx.ttftMs, undefined, 'no token came');
    assert.deepEqual(released.map((o) => o.reached), [true]);
  } finally {
    gateway.close();
    upstream.close();
    await pools.close();
  }
});

for (const [name, hung] of [
  ['its head at once and then nothing', headAtOnce(() => {})],
  ['not even its head', createServer((req) => req.resume())],
] as const) {
  test(`a stream whose model server sends ${name} goes on, once its first-byte limit is over, to the next endpoint; the one that missed it counts as a 504 answer`, { timeout: 20_000 }, async () => {
    const good = headAtOnce((res) => void res.end('data: {"choices":[{"delta":{"content":"B"}}]}\n\ndata: [DONE]\n\n'));
    const hungUrl = await listen(hung);
    const goodUrl = await listen(good);
    const pools = new UpstreamPools(DEFAULT_SETTINGS);
    const released: { address: string; outcome: { reached: boolean; abandoned?: boolean; status?: number } }[] = [];
    const endpoints = (url: string) => (url.endsWith('retry') ? [hungUrl, goodUrl] : [hungUrl]).map((u) => ({ url: u, address: new URL(u).host }));
    const gateway = await throughProxy(hungUrl, pools, (url) => ({
      endpoints: endpoints(url),
      maxAttempts: 2,
      firstByteTimeoutMs: 200,
      responseTimeoutMs: 10_000,
      release: (ep, outcome) => void released.push({ address: ep.address, outcome }),
    }));
    try {
      const r = await request(`${gateway.url}/retry`, { method: 'POST', body: '{}' });
      // Before: 504 upstream_timeout after one attempt, and the hung endpoint counted as nothing (or as answering 200).
      assert.equal(r.statusCode, 200);
      assert.match(await r.body.text(), /"content":"B"/);
      const ctx = await gateway.done;
      assert.equal(ctx.attempts, 2);
      assert.equal(ctx.upstreamStatus, 200);
      assert.deepEqual(
        released.map((r) => [r.address, r.outcome.reached, r.outcome.status, r.outcome.abandoned ?? false]),
        [
          [new URL(hungUrl).host, true, 504, false],
          [new URL(goodUrl).host, true, 200, false],
        ],
      );
      released.length = 0;
      // From the last endpoint it is the client's 504, counted against that endpoint the same way.
      const last = await request(`${gateway.url}/last`, { method: 'POST', body: '{}' });
      assert.equal(last.statusCode, 504);
      assert.equal(await last.body.text(), 'upstream_timeout');
      assert.deepEqual(released.map((r) => [r.outcome.reached, r.outcome.status]), [[true, 504]]);
    } finally {
      gateway.close();
      hung.closeAllConnections();
      hung.close();
      good.close();
      await pools.close();
    }
  });
}

test('a client that hangs up while its stream waits for a first byte is not counted against the endpoint, nor sent on to the next', { timeout: 20_000 }, async () => {
  let asked = 0;
  const hung = headAtOnce(() => void asked++);
  const other = headAtOnce((res) => {
    asked++;
    res.end('data: [DONE]\n\n');
  });
  const hungUrl = await listen(hung);
  const otherUrl = await listen(other);
  const pools = new UpstreamPools(DEFAULT_SETTINGS);
  const released: { reached: boolean; abandoned?: boolean; status?: number }[] = [];
  const gateway = await throughProxy(hungUrl, pools, () => ({
    endpoints: [hungUrl, otherUrl].map((u) => ({ url: u, address: new URL(u).host })),
    maxAttempts: 2,
    firstByteTimeoutMs: 400,
    responseTimeoutMs: 10_000,
    release: (_ep, outcome) => void released.push(outcome),
  }));
  try {
    const client = new AbortController();
    const pending = request(`${gateway.url}/v1/chat/completions`, { method: 'POST', body: '{}', signal: client.signal }).catch((err: unknown) => err);
    while (asked === 0) await sleep(10);
    client.abort();
    assert.ok((await pending) instanceof Error);
    await gateway.done;
    // Past the first-byte limit: a deadline still running would have fired by now.
    await sleep(500);
    assert.equal(asked, 1, 'not sent on to the next endpoint');
    assert.deepEqual(released.map((o) => o.status === 504), [false]);
  } finally {
    gateway.close();
    hung.closeAllConnections();
    hung.close();
    other.close();
    await pools.close();
  }
});

test('TTFT is the time to the first data event of a stream, not to its head (nor to a comment before it)', { timeout: 20_000 }, async () => {
  const upstream = headAtOnce(async (res) => {
    res.write(': queued\n\n');
    await sleep(300);
    res.end('data: {"choices":[{"delta":{"content":"A"}}]}\n\ndata: [DONE]\n\n');
  });
  const upstreamUrl = await listen(upstream);
  const pools = new UpstreamPools(DEFAULT_SETTINGS);
  const gateway = await throughProxy(upstreamUrl, pools, () => ({ firstByteTimeoutMs: 5000, responseTimeoutMs: 10_000 }));
  try {
    const r = await request(`${gateway.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
    assert.equal(r.statusCode, 200);
    assert.match(await r.body.text(), /"content":"A"/);
    const ctx = await gateway.done;
    // Before: the head's time, a few milliseconds. The token came no sooner than the upstream's 300 ms wait.
    assert.ok(ctx.ttftMs !== undefined && ctx.ttftMs >= 290, `ttftMs ${ctx.ttftMs}`);
  } finally {
    gateway.close();
    upstream.close();
    await pools.close();
  }
});

test('a stream cut by the response deadline is recorded as upstream_timeout, the code its SSE error event gives the client', { timeout: 20_000 }, async () => {
  const upstream = headAtOnce((res) => {
    res.write('data: {"choices":[{"delta":{"content":"first"}}]}\n\n');
    // Then nothing, until the proxy gives up.
  });
  const upstreamUrl = await listen(upstream);
  const pools = new UpstreamPools(DEFAULT_SETTINGS);
  const gateway = await throughProxy(upstreamUrl, pools, () => ({ firstByteTimeoutMs: 5000, responseTimeoutMs: 300 }));
  try {
    const r = await request(`${gateway.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
    assert.equal(r.statusCode, 200);
    assert.match(await r.body.text(), /"code":"upstream_timeout"/);
    // Before: upstream_error in the access log, the usage record and the error metric.
    assert.equal((await gateway.done).errorCode, 'upstream_timeout');
  } finally {
    gateway.close();
    upstream.close();
    await pools.close();
  }
});

test('an answer whose head is over the size undici reads is a 502 upstream_error, and the server was reached', async () => {
  const upstream = createNetServer((socket) => {
    socket.once('data', () => socket.end(`HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(20 * 1024)}\r\ncontent-length: 2\r\n\r\n{}`));
    socket.on('error', () => {});
  });
  const upstreamUrl = await listen(upstream);
  const pools = new UpstreamPools(DEFAULT_SETTINGS);
  const released: { reached: boolean; abandoned?: boolean }[] = [];
  const gateway = await throughProxy(upstreamUrl, pools, () => ({ release: (_ep, outcome) => void released.push(outcome) }));
  try {
    const r = await request(`${gateway.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
    // Before: 503 upstream_unavailable, "could not be reached", and the endpoint reported down.
    assert.equal(r.statusCode, 502);
    assert.equal(await r.body.text(), 'upstream_error');
    assert.deepEqual(released.map((o) => o.reached), [true]);
  } finally {
    gateway.close();
    upstream.close();
    await pools.close();
  }
});

for (const [name, sent] of [
  ['a 100 Continue nobody asked for', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}'],
  ['part of its head', 'HTTP/1.1 200 OK\r\ncontent-ty'],
] as const) {
  test(`a model server that answers with ${name} (then closes) was reached: retried on the next endpoint, from the last a 502 upstream_error`, async () => {
    const upstream = createNetServer((socket) => {
      socket.once('data', () => socket.end(sent));
      socket.on('error', () => {});
    });
    const good = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    const upstreamUrl = await listen(upstream);
    const goodUrl = await listen(good);
    const pools = new UpstreamPools(DEFAULT_SETTINGS);
    const released: { reached: boolean; abandoned?: boolean }[] = [];
    const endpoints = (url: string) => (url.endsWith('retry') ? [upstreamUrl, goodUrl] : [upstreamUrl]).map((u) => ({ url: u, address: new URL(u).host }));
    const gateway = await throughProxy(upstreamUrl, pools, (url) => ({ endpoints: endpoints(url), maxAttempts: 2, release: (_ep, outcome) => void released.push(outcome) }));
    try {
      const retried = await request(`${gateway.url}/retry`, { method: 'POST', body: '{}' });
      assert.equal(retried.statusCode, 200);
      assert.equal(await retried.body.text(), '{"ok":true}');
      released.length = 0;
      const r = await request(`${gateway.url}/last`, { method: 'POST', body: '{}' });
      // Before: 503 upstream_unavailable, "could not be reached (UND_ERR_SOCKET)", and the endpoint reported down.
      assert.equal(r.statusCode, 502);
      assert.equal(await r.body.text(), 'upstream_error');
      assert.deepEqual(released.map((o) => o.reached), [true]);
    } finally {
      gateway.close();
      good.close();
      upstream.close();
      await pools.close();
    }
  });
}

for (const [name, held, sent] of [
  ['its head only, while a response policy holds the answer', true, 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n'],
  ['40 of its 500 bytes, while a response policy holds the answer', true, `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{"id":"x","choices":[{"message":{"conte`],
  ['its head only, with nothing holding the answer', false, 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n'],
] as const) {
  test(`a model server that dies after sending ${name} is a 502 upstream_error, not 503 upstream_unavailable`, async () => {
    const upstream = createNetServer((socket) => {
      socket.once('data', () => {
        socket.write(sent);
        // Apart, so that the proxy has read the head (and the bytes after it) before the connection goes.
        setTimeout(() => socket.destroy(), 50);
      });
      socket.on('error', () => {});
    });
    const upstreamUrl = await listen(upstream);
    const pools = new UpstreamPools(DEFAULT_SETTINGS);
    let bodyStepRan = false;
    const gateway = await throughProxy(upstreamUrl, pools, () => ({ respond: () => (held ? { body: (b) => ((bodyStepRan = true), b) } : undefined) }));
    try {
      const r = await request(`${gateway.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
      // Before, with a held answer: 503 upstream_unavailable, "The model servers could not be reached (UND_ERR_SOCKET)".
      assert.equal(r.statusCode, 502);
      assert.equal(await r.body.text(), 'upstream_error');
      assert.equal((await gateway.done).upstreamStatus, 200, 'the server was reached and answered');
      assert.equal(bodyStepRan, false, 'no answer was complete to hand to the policy');
    } finally {
      gateway.close();
      upstream.close();
      await pools.close();
    }
  });
}

const USAGE_CHUNK = 'data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":21}}\n\n';
const NO_TYPE_STREAM = `data: {"choices":[{"index":0,"delta":{"content":"hi"}}],"usage":null}\n\n${USAGE_CHUNK}data: [DONE]\n\n`;

for (const [name, streamed, status, headers, sent, expected] of [
  // Before: passed as it came, usage chunk and all, and no usage read (a token quota kept its whole reservation).
  ['a stream without content-type is read as SSE: usage read, the usage tollgate asked for stripped', true, 200, {}, NO_TYPE_STREAM, { text: 'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n', usage: { inputTokens: 9, outputTokens: 21, cachedTokens: 0 } }],
  ['a stream request answered with application/json stays JSON (an error body)', true, 200, { 'content-type': 'application/json' }, '{"error":{"message":"data: no"},"usage":{"prompt_tokens":2,"completion_tokens":0}}', { text: '{"error":{"message":"data: no"},"usage":{"prompt_tokens":2,"completion_tokens":0}}', usage: { inputTokens: 2, outputTokens: 0, cachedTokens: 0 } }],
  ['a non-2xx answer without content-type to a stream request is not read as SSE', true, 500, {}, NO_TYPE_STREAM, { text: NO_TYPE_STREAM, usage: undefined }],
  ['an answer without content-type to a request that did not stream is not read as SSE', false, 200, {}, NO_TYPE_STREAM, { text: NO_TYPE_STREAM, usage: undefined }],
] as const) {
  test(name, async () => {
    const upstream = createServer((req, res) => {
      req.resume();
      res.writeHead(status, headers);
      res.end(sent);
    });
    const upstreamUrl = await listen(upstream);
    const pools = new UpstreamPools(DEFAULT_SETTINGS);
    // As the data plane leaves a streamed request whose client did not ask for usage (requestStreamUsage).
    const gateway = await throughProxy(upstreamUrl, pools, () => ({}), (ctx) => Object.assign(ctx, { stream: streamed, stripStreamUsage: streamed }));
    try {
      const r = await request(`${gateway.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
      assert.equal(r.statusCode, status);
      assert.equal(await r.body.text(), expected.text);
      assert.deepEqual((await gateway.done).usage, expected.usage);
    } finally {
      gateway.close();
      upstream.close();
      await pools.close();
    }
  });
}

for (const [name, pieces] of [
  ['a CRLF event, its last two bytes one by one', ['data: {"a":1}\r\n', '\r', '\n']],
  ['a CRLF event, in 1, 1 and 2 bytes', ['data: {"a":1}\r', '\n', '\r\n']],
  ['a CRLF event, byte by byte', ['data: {"a":1}', '\r', '\n', '\r', '\n']],
  // SSE lets each line end its own way. Before: none of these was seen as an event's end, and the stream was held whole.
  ['an LF line, then a CR blank line', ['data: {"a":1}\n\r']],
  ['a CRLF line, then a CR blank line, byte by byte', ['data: {"a":1}', '\r', '\n', '\r']],
  ['an LF line, then a CRLF blank line split', ['data: {"a":1}\n\r', '\n']],
] as const) {
  test(`a plain stream passes an event on once its blank line is in: ${name}`, { timeout: 20_000 }, async () => {
    let restSent = false;
    const upstream = headAtOnce(async (res) => {
      for (const piece of pieces) {
        res.write(piece);
        // Apart, so that the proxy reads each piece on its own.
        await sleep(40);
      }
      await sleep(1000);
      restSent = true;
      res.end('data: [DONE]\r\n\r\n');
    });
    const upstreamUrl = await listen(upstream);
    const pools = new UpstreamPools(DEFAULT_SETTINGS);
    const gateway = await throughProxy(upstreamUrl, pools, () => ({}));
    try {
      const r = await request(`${gateway.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
      let text = '';
      let eventBeforeRest: boolean | undefined;
      for await (const c of r.body) {
        text += c;
        if (text.includes('{"a":1}')) eventBeforeRest ??= !restSent;
      }
      // Before: held until the next event came, since the blank line was looked for in the last piece held only.
      assert.equal(eventBeforeRest, true, 'the event came only with the rest of the stream');
      assert.equal(text, `${pieces.join('')}data: [DONE]\r\n\r\n`);
    } finally {
      gateway.close();
      upstream.close();
      await pools.close();
    }
  });
}

const OK_ANSWER = 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}';

/**
 * A model server that answers `answer(n, onSocket)` the n-th request it sees (the onSocket-th on its connection):
 * true answers it and keeps the connection, 'end' closes the connection (FIN), 'reset' resets it.
 */
function closingServer(answer: (n: number, onSocket: number) => true | 'end' | 'reset'): NetServer & { requests: number } {
  const server = Object.assign(
    createNetServer((socket) => {
      let onSocket = 0;
      let buffered = '';
      socket.on('error', () => {});
      socket.on('data', (data) => {
        buffered += data.toString('latin1');
        // The proxy's requests here have no body: each head is a request.
        for (let end = buffered.indexOf('\r\n\r\n'); end !== -1; end = buffered.indexOf('\r\n\r\n')) {
          buffered = buffered.slice(end + 4);
          const what = answer(server.requests++, onSocket++);
          if (what === true) socket.write(OK_ANSWER);
          else if (what === 'end') socket.end();
          else socket.resetAndDestroy();
        }
      });
    }),
    { requests: 0 },
  );
  return server;
}

for (const how of ['end', 'reset'] as const) {
  test(`a kept-alive connection the model server closes (${how}) as a request goes out on it: the request is sent again on a fresh one, and the endpoint is not reported down`, async () => {
    // As uvicorn does when its idle timeout fires while the request is on its way.
    const upstream = closingServer((_n, onSocket) => (onSocket === 0 ? true : how));
    const upstreamUrl = await listen(upstream);
    const pools = new UpstreamPools(DEFAULT_SETTINGS);
    const released: { reached: boolean; abandoned?: boolean }[] = [];
    const gateway = await throughProxy(upstreamUrl, pools, () => ({ release: (_ep, outcome) => void released.push(outcome) }));
    try {
      for (const name of ['first', 'on the reused connection', 'next']) {
        const r = await request(`${gateway.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
        // Before, on the reused connection: 503 upstream_unavailable "could not be reached", and the endpoint taken out.
        assert.equal(`${r.statusCode} ${await r.body.text()}`, '200 {"ok":true}', name);
      }
      assert.deepEqual(released.map((o) => o.reached), [true, true, true]);
    } finally {
      gateway.close();
      upstream.close();
      await pools.close();
    }
  });
}

test('a request that fails on a fresh connection could not reach the server: not sent again, and sent again only once after a reused connection failed', async () => {
  // Only the very first request is answered; every other is reset.
  const upstream = closingServer((n) => n === 0 || 'reset');
  const upstreamUrl = await listen(upstream);
  const pools = new UpstreamPools(DEFAULT_SETTINGS);
  const released: { reached: boolean; abandoned?: boolean }[] = [];
  const gateway = await throughProxy(upstreamUrl, pools, () => ({ release: (_ep, outcome) => void released.push(outcome) }));
  const post = async () => {
    const r = await request(`${gateway.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
    return `${r.statusCode} ${await r.body.text()}`;
  };
  try {
    assert.equal(await post(), '200 {"ok":true}');
    // Reused, reset; then a fresh connection, reset too.
    assert.equal(await post(), '503 upstream_unavailable');
    assert.equal(upstream.requests, 3);
    // A fresh connection from the start, reset: no second try.
    assert.equal(await post(), '503 upstream_unavailable');
    assert.equal(upstream.requests, 4);
    assert.deepEqual(released.map((o) => [o.reached, o.abandoned]), [[true, false], [false, false], [false, false]]);
  } finally {
    gateway.close();
    upstream.close();
    await pools.close();
  }
});

/** A model server that answers every request with `answer`, written as it is (head and body). */
function rawAnswer(answer: string): NetServer {
  return createNetServer((socket) => {
    socket.once('data', () => socket.end(answer));
    socket.on('error', () => {});
  });
}

const USAGE_ONLY = 'data: {"choices":[],"usage":{"prompt_tokens":11,"completion_tokens":22}}\n\n';
/** As the data plane leaves a streamed request whose client did not ask for usage (requestStreamUsage). */
const strippedStream = (ctx: RequestContext) => Object.assign(ctx, { stream: true, stripStreamUsage: true });

test('a stream whose content-type came twice (an array from undici) is read as one: its usage read, and stripped for a client that did not ask for it', async () => {
  const events = 'data: {"choices":[{"delta":{"content":"hi"}}],"usage":null}\n\n';
  const upstream = rawAnswer(`HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n${events}${USAGE_ONLY}data: [DONE]\n\n`);
  const upstreamUrl = await listen(upstream);
  const pools = new UpstreamPools(DEFAULT_SETTINGS);
  const gateway = await throughProxy(upstreamUrl, pools, () => ({}), strippedStream);
  try {
    const r = await request(`${gateway.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
    // Before: read as JSON, the usage chunk reached the client and no usage was read (a token quota kept its reservation).
    assert.equal(await r.body.text(), 'data: {"choices":[{"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n');
    assert.deepEqual((await gateway.done).usage, { inputTokens: 11, outputTokens: 22, cachedTokens: 0 });
  } finally {
    gateway.close();
    upstream.close();
    await pools.close();
  }
});

test("a rewritten stream's bytes_out is the bytes the client got, in CJK text too (it counted characters)", async () => {
  const events = Array.from({ length: 20 }, (_, i) => `data: {"choices":[{"delta":{"content":"你好，世界 ${i}"}}],"usage":null}\n\n`).join('');
  const upstream = headAtOnce((res) => void res.end(`${events}${USAGE_ONLY}data: [DONE]\n\n`));
  const upstreamUrl = await listen(upstream);
  const pools = new UpstreamPools(DEFAULT_SETTINGS);
  const gateway = await throughProxy(upstreamUrl, pools, () => ({}), strippedStream);
  try {
    const r = await request(`${gateway.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
    const received = Buffer.from(await r.body.arrayBuffer());
    assert.match(received.toString(), /你好，世界 19/);
    assert.doesNotMatch(received.toString(), /usage/, 'the stream was rewritten');
    assert.equal((await gateway.done).bytesOut, received.length);
  } finally {
    gateway.close();
    upstream.close();
    await pools.close();
  }
});

for (const [name, headers, body, usage] of [
  ['a JSON answer that is `null`', 'content-type: application/json\r\ncontent-length: 4', 'null', undefined],
  ['a stream with a `data: null` event', 'content-type: text/event-stream\r\nconnection: close', `data: null\n\ndata: {"choices":[{"delta":{"content":"hi"}}]}\n\n${USAGE_ONLY}data: [DONE]\n\n`, { inputTokens: 11, outputTokens: 22, cachedTokens: 0 }],
] as const) {
  test(`with logging.logPrompts on, ${name} passes through as it came, its usage read`, async () => {
    const upstream = rawAnswer(`HTTP/1.1 200 OK\r\n${headers}\r\n\r\n${body}`);
    const upstreamUrl = await listen(upstream);
    const pools = new UpstreamPools(DEFAULT_SETTINGS);
    // As the data plane leaves a request with logPrompts on; the client asked for usage.
    const gateway = await throughProxy(upstreamUrl, pools, () => ({}), (ctx) => Object.assign(ctx, { completion: new CompletionText() }));
    try {
      const r = await request(`${gateway.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
      // Before: a 502 "ended the answer early (Cannot read properties of null (reading 'choices'))", charged nothing.
      assert.equal(`${r.statusCode} ${await r.body.text()}`, `200 ${body}`);
      const ctx = await gateway.done;
      assert.deepEqual(ctx.usage, usage);
      assert.equal(ctx.completion!.text, usage ? 'hi' : '');
    } finally {
      gateway.close();
      upstream.close();
      await pools.close();
    }
  });
}

/** An upstream that sends `head` and `body` as they are, then drops the connection (dies) once they have gone. */
function dyingAnswer(head: string, body: Buffer | string): NetServer {
  return createNetServer((socket) => {
    socket.once('data', () => {
      socket.write(head);
      socket.write(body);
      // Apart, so that the proxy has passed the body on before the connection goes.
      setTimeout(() => socket.destroy(), 100);
    });
    socket.on('error', () => {});
  });
}

/** How the client's read of the body ends: the whole body ('ended'), a connection cut ('cut'), or nothing in 5 s ('hung'). */
async function readToEnd(body: AsyncIterable<Buffer>): Promise<{ how: 'ended' | 'cut' | 'hung'; bytes: Buffer }> {
  const chunks: Buffer[] = [];
  const read = (async () => {
    for await (const c of body) chunks.push(c);
  })().then(
    () => 'ended' as const,
    () => 'cut' as const,
  );
  const how = await Promise.race([read, sleep(5000).then(() => 'hung' as const)]);
  return { how, bytes: Buffer.concat(chunks) };
}

const EVENT = 'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n';

test('a stream with a content-length cut short ends the client connection, so the client sees the cut instead of waiting', { timeout: 20_000 }, async () => {
  const upstream = dyingAnswer('HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 500\r\n\r\n', EVENT);
  const upstreamUrl = await listen(upstream);
  const pools = new UpstreamPools(DEFAULT_SETTINGS);
  const gateway = await throughProxy(upstreamUrl, pools, () => ({}));
  try {
    const r = await request(`${gateway.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
    assert.equal(r.headers['content-length'], '500');
    const read = await readToEnd(r.body);
    // Before: an error event the client never read (past fewer bytes than promised), on a connection left open: hung.
    assert.equal(read.how, 'cut');
    assert.equal(read.bytes.toString(), EVENT);
    assert.equal((await gateway.done).errorCode, 'upstream_error');
  } finally {
    gateway.close();
    upstream.close();
    await pools.close();
  }
});

/** An event gzip'd and flushed, as a server compressing a stream sends it. */
function gzipped(text: string): Promise<Buffer> {
  return new Promise((resolve) => {
    const gz = createGzip();
    const out: Buffer[] = [];
    gz.on('data', (c: Buffer) => out.push(c));
    gz.write(text);
    gz.flush(zlib.Z_SYNC_FLUSH, () => resolve(Buffer.concat(out)));
  });
}

test('a compressed stream nothing rewrites goes on chunk by chunk, not held to its end', { timeout: 20_000 }, async () => {
  let release: () => void = () => {};
  const upstream = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream', 'content-encoding': 'gzip' });
    const gz = createGzip();
    gz.pipe(res);
    gz.write(EVENT);
    gz.flush(zlib.Z_SYNC_FLUSH);
    // The rest only once the client has the first event: a stream held until its end would never get there.
    release = () => gz.end('data: [DONE]\n\n');
  });
  const upstreamUrl = await listen(upstream);
  const pools = new UpstreamPools(DEFAULT_SETTINGS);
  const gateway = await throughProxy(upstreamUrl, pools, () => ({}));
  try {
    const r = await request(`${gateway.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
    assert.equal(r.headers['content-encoding'], 'gzip');
    const chunks = r.body[Symbol.asyncIterator]();
    // Before: its compressed bytes were searched for a blank line, found none, and held whole.
    const first = await Promise.race([chunks.next(), sleep(5000).then(() => assert.fail('the stream was held'))]);
    const received = [first.value as Buffer];
    release();
    for (let c = await chunks.next(); !c.done; c = await chunks.next()) received.push(c.value as Buffer);
    assert.equal(gunzipSync(Buffer.concat(received)).toString(), `${EVENT}data: [DONE]\n\n`);
  } finally {
    gateway.close();
    upstream.close();
    await pools.close();
  }
});

test('a compressed stream cut short ends the client connection, with no plain-text error event in its compressed bytes', { timeout: 20_000 }, async () => {
  const gz = await gzipped(EVENT);
  // Chunked, so that the connection dropping before the last chunk is a cut (close-delimited, it would be the end).
  const chunk = Buffer.concat([Buffer.from(`${gz.length.toString(16)}\r\n`), gz, Buffer.from('\r\n')]);
  const upstream = dyingAnswer('HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n', chunk);
  const upstreamUrl = await listen(upstream);
  const pools = new UpstreamPools(DEFAULT_SETTINGS);
  const gateway = await throughProxy(upstreamUrl, pools, () => ({}));
  try {
    const r = await request(`${gateway.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
    const read = await readToEnd(r.body);
    // Before: `data: {"error":...}` was appended to the gzip body as plain text, corrupting what the client decoded.
    assert.equal(read.how, 'cut');
    assert.doesNotMatch(read.bytes.toString('latin1'), /"error"/);
    assert.equal(gunzipSync(read.bytes, { finishFlush: zlib.Z_SYNC_FLUSH }).toString(), EVENT);
    assert.equal((await gateway.done).errorCode, 'upstream_error');
  } finally {
    gateway.close();
    upstream.close();
    await pools.close();
  }
});

const HALF_EVENT = 'data: {"id":"c1","object":"cha';
const CLOSE_DELIMITED = 'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n';

for (const [name, setup] of [
  ['passed through', undefined],
  ['rewritten (usage stripped)', strippedStream],
] as const) {
  // Inside its data, and (the responses API names every event) after its `event:` line, before any data.
  for (const [where, half] of [
    ['inside an event', HALF_EVENT],
    ['after an event line', 'event: response.completed\n'],
  ] as const) {
    test(`a close-delimited stream whose server stops ${where} (${name}) ends with the error event, recorded as upstream_error`, async () => {
      const upstream = rawAnswer(`${CLOSE_DELIMITED}${EVENT}${half}`);
      const upstreamUrl = await listen(upstream);
      const pools = new UpstreamPools(DEFAULT_SETTINGS);
      const gateway = await throughProxy(upstreamUrl, pools, () => ({}), setup);
      try {
        const r = await request(`${gateway.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
        const text = await r.body.text();
        // Before: the half event went on (JSON no SDK parses, or an event line with nothing after it), and the record said 200 with no fault.
        assert.ok(text.startsWith(EVENT) && !text.includes(half), text);
        assert.match(text, /^data: \{"error":\{.*"code":"upstream_error"\}\}\n\n$/m);
        assert.equal((await gateway.done).errorCode, 'upstream_error');
      } finally {
        gateway.close();
        upstream.close();
        await pools.close();
      }
    });
  }

  test(`a close-delimited stream whose last event, whole, has no blank line (${name}) ends as it came`, async () => {
    const upstream = rawAnswer(`${CLOSE_DELIMITED}${EVENT}data: [DONE]`);
    const upstreamUrl = await listen(upstream);
    const pools = new UpstreamPools(DEFAULT_SETTINGS);
    const gateway = await throughProxy(upstreamUrl, pools, () => ({}), setup);
    try {
      const r = await request(`${gateway.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
      assert.equal(await r.body.text(), `${EVENT}data: [DONE]`);
      assert.equal((await gateway.done).errorCode, undefined);
    } finally {
      gateway.close();
      upstream.close();
      await pools.close();
    }
  });
}
