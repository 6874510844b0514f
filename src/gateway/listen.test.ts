import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STATUS_CODES, type RequestListener, type ServerResponse } from 'node:http';
import { DEFAULT_SETTINGS, type GatewaySettings } from '../config/settings.js';
import { applyListenerTimeouts, createListener, listen, type ListenerOptions } from './listen.js';
import { readBody } from './body.js';
import type { GatewayError } from './errors.js';

test('reloaded server timeouts apply to a listener that is already open', async () => {
  const server = createListener((_req, res) => res.end('ok'), { ...DEFAULT_SETTINGS.server, headersTimeout: 10_000, bodyTimeout: 30_000, keepAliveTimeout: 5000 });
  await listen(server, 0, '127.0.0.1');
  try {
    assert.deepEqual([server.headersTimeout, server.requestTimeout, server.keepAliveTimeout], [10_000, 41_000, 5000]);
    applyListenerTimeouts(server, { ...DEFAULT_SETTINGS.server, headersTimeout: 2000, bodyTimeout: 4000, keepAliveTimeout: 500 });
    // Node reads these when it checks its connections and when a response ends (headersTimeout + bodyTimeout + 1 s).
    assert.deepEqual([server.headersTimeout, server.requestTimeout, server.keepAliveTimeout], [2000, 7000, 500]);
    assert.equal(server.listening, true);
  } finally {
    server.close();
  }
});

/** A keep-alive connection to `port`: `ask(path)` sends a request and resolves with its answer's text. */
async function keepAliveConnection(port: number) {
  const socket = connect(port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  socket.on('error', () => {});
  let pending: ((text: string) => void) | undefined;
  socket.on('data', (d: Buffer) => pending?.(d.toString('latin1')));
  const ask = (path: string) =>
    new Promise<string>((resolve) => {
      pending = resolve;
      socket.write(`GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`);
    });
  return { socket, ask, closed };
}

test('a keepAliveTimeout lowered on reload reaches connections idle at that moment; one with a request in progress is not cut', async () => {
  let answerSlow: (() => void) | undefined;
  const server = createListener((req, res) => (req.url === '/slow' ? (answerSlow = () => res.end('slow')) : res.end('ok')), { ...DEFAULT_SETTINGS.server, keepAliveTimeout: 60_000 });
  const port = await listen(server, 0, '127.0.0.1');
  try {
    const idle = await keepAliveConnection(port);
    const busy = await keepAliveConnection(port);
    assert.match(await idle.ask('/'), /^HTTP\/1\.1 200/);
    assert.match(await busy.ask('/'), /^HTTP\/1\.1 200/);
    const slow = busy.ask('/slow');
    while (!answerSlow) await new Promise((r) => setImmediate(r));
    applyListenerTimeouts(server, { ...DEFAULT_SETTINGS.server, keepAliveTimeout: 100 });
    // Before: the idle one kept the minute its timer was armed with.
    const within = (p: Promise<void>, ms: number) => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
    assert.equal(await within(idle.closed, 5000), true, 'the idle connection closed under the new timeout');
    assert.equal(busy.socket.destroyed, false, 'the busy one is still open');
    answerSlow();
    assert.match(await slow, /^HTTP\/1\.1 200[^]*slow$/);
    // Its next idle spell is under the new timeout, as Node arms it.
    assert.equal(await within(busy.closed, 5000), true);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

/** Writes `parts` to a fresh connection (`gapMs` apart) and resolves with all it read once the server closes it (or at `waitMs`). */
function exchange(port: number, parts: string[], gapMs = 0, waitMs = 8000): Promise<{ text: string; ms: number; closed: boolean }> {
  return new Promise((resolve) => {
    const start = Date.now();
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const done = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, ms: Date.now() - start, closed });
    };
    const timer = setTimeout(() => done(false), waitMs);
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => done(true));
    void (async () => {
      for (const part of parts) {
        if (socket.destroyed) return;
        socket.write(part);
        await new Promise((r) => setTimeout(r, gapMs));
      }
    })();
  });
}

/** The status, headers and JSON body of the first answer in `text`. */
function firstAnswer(text: string): { status: number; headers: Record<string, string>; body: { error: { message: string; type: string; code: string } } } {
  const [head, rest] = text.split('\r\n\r\n', 2);
  const [statusLine, ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine.split(' ')[1]), headers, body: JSON.parse(rest.slice(0, Number(headers['content-length']))) };
}

async function withListener(
  handler: RequestListener,
  settings: Partial<GatewaySettings['server']>,
  fn: (port: number) => Promise<void>,
  options?: ListenerOptions,
): Promise<void> {
  const server = createListener(handler, { ...DEFAULT_SETTINGS.server, ...settings }, options);
  const port = await listen(server, 0, '127.0.0.1');
  try {
    await fn(port);
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

test('requests node:http refuses before the handler are answered in the documented shape, with x-request-id', async () => {
  const refused: number[] = [];
  await withListener((_req, res) => res.end('ok'), {}, async (port) => {
    const cases: [string, number, string][] = [
      ['GARBAGE\r\n\r\n', 400, 'invalid_request'],
      [`GET / HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'invalid_request'],
      ['CONNECT 127.0.0.1:1 HTTP/1.1\r\nhost: x\r\n\r\n', 405, 'method_not_allowed'],
    ];
    for (const [request, status, code] of cases) {
      const { text, closed } = await exchange(port, [request]);
      assert.ok(closed, 'the connection closes after the answer');
      const answer = firstAnswer(text);
      assert.equal(answer.status, status, text);
      assert.match(text.split('\r\n')[0], new RegExp(`^HTTP/1.1 ${status} ${STATUS_CODES[status]}$`));
      assert.deepEqual([answer.body.error.type, answer.body.error.code], ['invalid_request_error', code]);
      assert.match(answer.headers['x-request-id'] ?? '', /^[0-9a-f-]{36}$/, `x-request-id on the ${status}`);
    }
    // Each is counted (tollgate_requests_total), and a served request is not: it is the handler's to count.
    await exchange(port, ['GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n']);
    assert.deepEqual(refused, [400, 431, 405]);
  }, { onRefused: (status) => refused.push(status) });
});

test('with the Apigee fault format configured, those answers are in its shape too (as every other refusal is)', async () => {
  let format: 'openai' | 'apigee' = 'apigee';
  await withListener(
    (_req, res) => res.end('ok'),
    {},
    async (port) => {
      for (const [request, code] of [
        ['GARBAGE\r\n\r\n', 'invalid_request'],
        ['CONNECT 127.0.0.1:1 HTTP/1.1\r\nhost: x\r\n\r\n', 'method_not_allowed'],
      ]) {
        const { body } = firstAnswer((await exchange(port, [request])).text) as unknown as {
          body: { fault: { faultstring: string; detail: { errorcode: string } }; error: { message: string; type: string; code: string } };
        };
        const message = body.error.message;
        assert.ok(message, request);
        assert.deepEqual(body, { fault: { faultstring: message, detail: { errorcode: code } }, error: { message, type: 'invalid_request_error', code } });
      }
      // Read at each answer: a reload that changes the format applies to the next one.
      format = 'openai';
      const { body } = firstAnswer((await exchange(port, ['GARBAGE\r\n\r\n'])).text);
      assert.deepEqual(Object.keys(body), ['error']);
    },
    { faultFormat: () => format },
  );
});

test('a client that stops halfway through its headers gets its 408 about headersTimeout later, not up to 30 s later', async () => {
  await withListener((_req, res) => res.end('ok'), { headersTimeout: 300 }, async (port) => {
    const { text, ms, closed } = await exchange(port, ['POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n'], 0, 10_000);
    assert.ok(closed, `the connection was still open after ${ms} ms`);
    assert.ok(ms < 5000, `the 408 took ${ms} ms`);
    const answer = firstAnswer(text);
    assert.deepEqual([answer.status, answer.body.error.code], [408, 'request_timeout']);
    assert.ok(answer.headers['x-request-id']);
  });
});

test('an Expect other than 100-continue is served, not answered with a bare 417', async () => {
  await withListener((_req, res) => res.end('served'), {}, async (port) => {
    const { text } = await exchange(port, ['POST / HTTP/1.1\r\nhost: x\r\nexpect: something-else\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}']);
    assert.match(text, /^HTTP\/1.1 200 OK\r\n/);
    assert.match(text, /served$/);
  });
});

test('garbage pipelined behind an answer that is streaming does not land in the middle of that answer', async () => {
  let respond!: (res: ServerResponse) => void;
  const streaming = new Promise<ServerResponse>((resolve) => (respond = resolve));
  await withListener(
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: first\n\n');
      respond(res);
    },
    {},
    async (port) => {
      const seen = exchange(port, ['GET /stream HTTP/1.1\r\nhost: x\r\n\r\n', 'GARBAGE\r\n\r\n'], 200, 3000);
      const res = await streaming;
      const { text } = await seen;
      res.end();
      assert.match(text, /^HTTP\/1.1 200 OK\r\n/);
      assert.doesNotMatch(text, /HTTP\/1.1 400/, 'a 400 written into the event stream');
    },
  );
});

test('a CONNECT client that keeps its side open is let go a few seconds after its 405, not held for good', async () => {
  await withListener((_req, res) => res.end('ok'), {}, async (port) => {
    const { text, closed, ms } = await new Promise<{ text: string; closed: boolean; ms: number }>((resolve) => {
      const start = Date.now();
      // allowHalfOpen: the client does not end its side when the server ends its own, as an attacker would not.
      const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      let text = '';
      const timer = setTimeout(() => {
        socket.destroy();
        resolve({ text, closed: false, ms: Date.now() - start });
      }, 15_000);
      socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
      // Bytes now and then after the answer: they would keep an idle timeout from firing, and once the server has let
      // the socket go, one of them is answered with a reset, which closes this side.
      const dribble = setInterval(() => socket.writable && socket.write('more bytes after the answer'), 250);
      socket.on('error', () => {});
      socket.on('close', () => {
        clearInterval(dribble);
        clearTimeout(timer);
        resolve({ text, closed: true, ms: Date.now() - start });
      });
      socket.write('CONNECT 127.0.0.1:1 HTTP/1.1\r\nhost: x\r\n\r\n');
    });
    assert.equal(firstAnswer(text).status, 405);
    assert.ok(closed, `the socket was still open after ${ms} ms`);
  });
});

test('garbage pipelined behind a request still waiting for its answer closes the connection: no 400 is read as that answer', async () => {
  await withListener(
    (_req, res) => void setTimeout(() => res.end('the real answer'), 300),
    {},
    async (port) => {
      const { text, closed } = await exchange(port, ['GET /slow HTTP/1.1\r\nhost: x\r\n\r\nGARBAGE\r\n\r\n']);
      assert.ok(closed);
      assert.doesNotMatch(text, /^HTTP\/1.1 400/, 'a 400 would be read as the answer to GET /slow');
    },
  );
});

test('an HTTP/1.1 request without Host gets a 400 in the documented shape; HTTP/1.0 needs none', async () => {
  const refused: number[] = [];
  await withListener(
    (_req, res) => res.end('served'),
    {},
    async (port) => {
      const { text } = await exchange(port, ['GET /v1/models HTTP/1.1\r\n\r\n']);
      const answer = firstAnswer(text);
      assert.equal(answer.status, 400, text);
      assert.equal(answer.body.error.code, 'invalid_request');
      assert.match(answer.body.error.message, /Host/);
      assert.ok(answer.headers['x-request-id']);
      assert.match((await exchange(port, ['GET /v1/models HTTP/1.0\r\n\r\n'])).text, /served$/);
      assert.deepEqual(refused, [400]);
    },
    { onRefused: (status) => refused.push(status) },
  );
});

test('a request with several Host lines or one that is no host gets a 400; an absolute-form target names the host', async () => {
  const refused: number[] = [];
  const seen: (string | undefined)[] = [];
  await withListener(
    (req, res) => {
      seen.push(req.headers.host);
      res.end('served');
    },
    {},
    async (port) => {
      // node:http keeps the first of two Host lines: a route matched on it and a front proxy reading the last disagreed.
      for (const request of [
        'GET /v1/models HTTP/1.1\r\nHost: internal.example.com\r\nHost: public.example.com\r\n\r\n',
        'GET /v1/models HTTP/1.1\r\nhost: a\r\nHOST: a\r\n\r\n',
        'GET /v1/models HTTP/1.1\r\nHost: internal.example.com:notaport\r\n\r\n',
        'GET /v1/models HTTP/1.1\r\nHost: a b\r\n\r\n',
        'GET /v1/models HTTP/1.1\r\nHost: a/b\r\n\r\n',
        // The Host line of an absolute-form request is checked too, before the target's host replaces it.
        'GET http://a.example.com/v1/models HTTP/1.1\r\nHost: a b\r\n\r\n',
        'GET http://a.example.com:port/v1/models HTTP/1.1\r\nHost: a\r\n\r\n',
      ]) {
        const answer = firstAnswer((await exchange(port, [request])).text);
        assert.equal(answer.status, 400, request);
        assert.equal(answer.body.error.code, 'invalid_request');
        assert.match(answer.body.error.message, /host/i);
      }
      // Valid hosts: a name with a port, an empty port, an IPv6 literal, an IPv4 address, an empty Host (no authority).
      for (const host of ['a.example.com:8080', 'a.example.com:', '[::1]:8080', '127.0.0.1', '']) {
        assert.match((await exchange(port, [`GET /v1/models HTTP/1.1\r\nHost: ${host}\r\nconnection: close\r\n\r\n`])).text, /served$/, host);
      }
      // RFC 9112 §3.2.2: the target's authority, not the Host line (userinfo is no part of it).
      await exchange(port, ['POST http://internal.example.com/v1/chat/completions HTTP/1.1\r\nHost: public.example.com\r\ncontent-length: 0\r\nconnection: close\r\n\r\n']);
      await exchange(port, ['GET HTTP://u:p@b.example.com:81/v1/models HTTP/1.1\r\nHost: a\r\nconnection: close\r\n\r\n']);
      assert.deepEqual(seen.slice(-2), ['internal.example.com', 'b.example.com:81']);
      assert.deepEqual(refused, [400, 400, 400, 400, 400, 400, 400]);
      const target = firstAnswer((await exchange(port, ['GET http://a.example.com:port/v1/models HTTP/1.1\r\nHost: a\r\n\r\n'])).text);
      assert.match(target.body.error.message, /request target's host "a\.example\.com:port"/);
    },
    { onRefused: (status) => refused.push(status) },
  );
});

test('the 405 to CONNECT names the methods the listener takes', async () => {
  const connect = 'CONNECT 127.0.0.1:1 HTTP/1.1\r\nhost: x\r\n\r\n';
  await withListener((_req, res) => res.end(), {}, async (port) => {
    assert.equal(firstAnswer((await exchange(port, [connect])).text).headers.allow, 'GET, HEAD, POST, DELETE');
  });
  await withListener((_req, res) => res.end(), {}, async (port) => {
    assert.equal(firstAnswer((await exchange(port, [connect])).text).headers.allow, 'GET, POST, PUT, DELETE');
  }, { methods: 'GET, POST, PUT, DELETE' });
});

test('a malformed chunked body is the handler\'s to answer, also when it starts reading only after the parser failed', async () => {
  const read: string[] = [];
  await withListener(
    (req, res) => {
      // A handler that reads the body only after an await (an intercept policy), when the parse error is already in.
      setTimeout(() => {
        readBody(req, 1_000_000, 5000).then(
          () => res.end('read'),
          (err: GatewayError) => {
            read.push(err.code);
            const { status, headers, body } = err.toResponse();
            res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) });
            res.end(body);
          },
        );
      }, 100);
    },
    {},
    async (port) => {
      const { text, closed } = await exchange(port, ['POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n']);
      assert.ok(closed, 'the connection closes after the answer (nothing after a malformed chunk can be parsed)');
      const answer = firstAnswer(text);
      assert.deepEqual([answer.status, answer.body.error.code, answer.headers.connection], [400, 'invalid_request', 'close']);
      assert.match(answer.body.error.message, /chunk size/);
      assert.deepEqual(read, ['invalid_request']);
    },
  );
});

/** A self-signed certificate for 127.0.0.1, in a temporary directory `fn` runs with. */
async function withCertificate(fn: (tls: { cert: string; key: string }) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-listen-'));
  const tls = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', tls.key, '-out', tls.cert, '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
    await fn(tls);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The first bytes of a TLS record, then nothing: a handshake that never finishes. */
const HALF_HELLO = '\x16\x03\x01';

test('an HTTPS client that never finishes its TLS handshake is let go after headersTimeout, not 120 s', async () => {
  await withCertificate(async (tls) => {
    await withListener((_req, res) => res.end('ok'), { headersTimeout: 500 }, async (port) => {
      const { closed, ms } = await exchange(port, [HALF_HELLO], 0, 5000);
      assert.ok(closed && ms < 3000, `closed after ${ms} ms`);
    }, { tls });
  });
});

test('closing all connections of an HTTPS listener also closes those still in their TLS handshake', async () => {
  await withCertificate(async (tls) => {
    const server = createListener((_req, res) => res.end('ok'), { ...DEFAULT_SETTINGS.server, headersTimeout: 60_000 }, { tls });
    const port = await listen(server, 0, '127.0.0.1');
    const handshaking = exchange(port, [HALF_HELLO], 0, 5000);
    await new Promise<void>((resolve) => server.once('connection', () => resolve()));
    const closedAt = Date.now();
    server.close();
    server.closeAllConnections();
    const { closed } = await handshaking;
    assert.ok(closed && Date.now() - closedAt < 1000, 'the connection closed at once');
  });
});
