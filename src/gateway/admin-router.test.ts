import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { AdminError, AdminRouter } from './admin-router.js';
import { MAX_JSON_DEPTH } from '../lib/json-depth.js';

async function serve(router: AdminRouter): Promise<{ base: string; get: (path: string, headers?: Record<string, string>) => Promise<{ status: number; body: unknown }>; close: () => Promise<void> }> {
  const server = createServer(router.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    get: async (path, headers = {}) => {
      const r = await fetch(base + path, { headers });
      return { status: r.status, body: await r.json() };
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

test('admin router: an error no handler expected is logged (with the path, without the query) and answered as a bare 500', async () => {
  const lines: { level: number; msg: string; path?: string; err?: { message: string } }[] = [];
  const router = new AdminRouter(undefined, pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) }));
  router.add('GET', '/v1/broken', () => {
    throw new TypeError('cannot read properties of undefined');
  });
  router.add('GET', '/v1/refused', () => {
    throw new AdminError(409, 'already_exists', 'exists');
  });
  const api = await serve(router);
  try {
    const r = await api.get('/v1/broken?secret=no');
    assert.equal(r.status, 500);
    assert.deepEqual(r.body, { error: { message: 'Internal error', code: 'internal_error' } });
    assert.equal(lines.length, 1);
    assert.equal(lines[0].msg, 'admin request failed');
    assert.equal(lines[0].path, '/v1/broken');
    assert.equal(lines[0].err?.message, 'cannot read properties of undefined');
    // Refusals the handlers meant are answers, not failures: nothing logged.
    assert.equal((await api.get('/v1/refused')).status, 409);
    assert.equal(lines.length, 1);
  } finally {
    await api.close();
  }
});

test('admin router: `authenticated` is true only for the configured token; without a token, a Bearer header is just a header', async () => {
  const seen: boolean[] = [];
  const record = (router: AdminRouter) => router.add('GET', '/v1/who', (req) => (seen.push(req.authenticated), { body: {} }));
  const open = new AdminRouter(undefined);
  record(open);
  const guarded = new AdminRouter('s3cret');
  record(guarded);
  const a = await serve(open);
  const b = await serve(guarded);
  try {
    assert.equal((await a.get('/v1/who', { authorization: 'Bearer s3cret' })).status, 200);
    assert.equal((await a.get('/v1/who')).status, 200);
    assert.equal((await b.get('/v1/who', { authorization: 'Bearer s3cret' })).status, 200);
    assert.equal((await b.get('/v1/who', { authorization: 'Bearer wrong!' })).status, 401);
    // The scheme in any case, as RFC 9110 allows (before: a lower-case `bearer` was refused).
    assert.equal((await b.get('/v1/who', { authorization: 'bearer s3cret' })).status, 200);
    assert.equal((await b.get('/v1/who', { authorization: 'Basic s3cret' })).status, 401);
    assert.equal((await b.get('/v1/who', { authorization: 'Bearer  s3cret extra' })).status, 401);
    // Without the token an unknown path or a wrong method is a 401 too (before: 404 and 405 told what exists).
    assert.equal((await b.get('/v1/nothing-here')).status, 401);
    assert.equal((await b.get('/v1/nothing-here', { authorization: 'Bearer s3cret' })).status, 404);
    assert.deepEqual(seen, [false, false, true, true]);
  } finally {
    await a.close();
    await b.close();
  }
});

test('admin router: previous tokens are accepted beside the current one while callers move, each use logged once', async () => {
  const logs: { msg: string; previousToken?: number }[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const router = new AdminRouter('new-token', logger, ['old-token', 'older']);
  router.add('GET', '/v1/who', () => ({ body: {} }));
  const api = await serve(router);
  try {
    for (const token of ['new-token', 'old-token', 'old-token', 'older']) assert.equal((await api.get('/v1/who', { authorization: `Bearer ${token}` })).status, 200, token);
    for (const token of ['old', 'new-token2', 'older-still', '']) assert.equal((await api.get('/v1/who', { authorization: `Bearer ${token}` })).status, 401, token);
    assert.deepEqual(logs.map((l) => l.previousToken), [1, 2], 'each previous token logged once, never the token itself');
    assert.ok(!JSON.stringify(logs).includes('old-token'));
  } finally {
    await api.close();
  }
});

test('admin router: a JSON body nested deeper than MAX_JSON_DEPTH is a 400 naming the limit, not a stack overflow in a handler', async () => {
  const router = new AdminRouter(undefined, pino({ level: 'silent' }));
  router.add('POST', '/v1/things', async (req) => ({ body: { got: typeof (await req.json()) } }));
  const api = await serve(router);
  try {
    const post = async (body: string) => {
      const r = await fetch(`${api.base}/v1/things`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      return { status: r.status, body: (await r.json()) as { error?: { code: string; details: { path: string; message: string }[] } } };
    };
    const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
    assert.deepEqual(await post(`{"a":${nested(MAX_JSON_DEPTH - 1)}}`), { status: 200, body: { got: 'object' } });
    const deep = await post(`{"a":${nested(5000)}}`);
    assert.equal(deep.status, 400);
    assert.equal(deep.body.error?.code, 'invalid');
    assert.deepEqual(deep.body.error?.details, [{ path: '(body)', message: `nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep` }]);
  } finally {
    await api.close();
  }
});

test('admin router: a body that is not UTF-8, JSON or YAML, is a 400 whatever charset it names, not stored with U+FFFD', async () => {
  const router = new AdminRouter(undefined, pino({ level: 'silent' }));
  router.add('POST', '/v1/things', async (req) => ({ body: { got: await req.json() } }));
  router.add('POST', '/v1/apply', async (req) => ({ body: { got: await req.text() } }), { yaml: true });
  const api = await serve(router);
  try {
    const post = async (path: string, body: Buffer, type: string) => {
      const r = await fetch(`${api.base}${path}`, { method: 'POST', body: new Uint8Array(body), headers: { 'content-type': type } });
      return { status: r.status, body: (await r.json()) as { got?: unknown; error?: { code: string; details: { path: string; message: string }[] } } };
    };
    const latin1 = Buffer.from('{"name":"Caf\xe9"}', 'latin1');
    for (const [path, type] of [
      ['/v1/things', 'application/json'],
      ['/v1/things', 'application/json; charset=iso-8859-1'],
      ['/v1/apply', 'application/yaml'],
    ]) {
      const refused = await post(path, latin1, type);
      assert.equal(refused.status, 400, `${path} ${type}`);
      assert.deepEqual(refused.body.error?.details, [{ path: '(body)', message: 'is not UTF-8 text' }]);
    }
    assert.deepEqual(await post('/v1/things', Buffer.from('{"name":"Café"}'), 'application/json'), { status: 200, body: { got: { name: 'Café' } } });
  } finally {
    await api.close();
  }
});

test('admin router: a backslash in the path, plain or percent-encoded in either case, is a 400 as on the data plane', async () => {
  const router = new AdminRouter(undefined, pino({ level: 'silent' }));
  router.add('GET', '/v1/things/{name}', (req) => ({ body: { name: req.params.name } }));
  const api = await serve(router);
  // Sent as written: fetch would turn a raw backslash into a slash.
  const raw = (path: string) =>
    new Promise<{ status: number; body: { error?: { code: string } } }>((resolve, reject) => {
      httpRequest({ host: '127.0.0.1', port: new URL(api.base).port, path }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
      })
        .on('error', reject)
        .end();
    });
  try {
    assert.deepEqual(await raw('/v1/things/a%2Fb'), { status: 200, body: { name: 'a/b' } });
    for (const name of ['a\\b', 'a%5cb', 'a%5Cb', '%5C..']) {
      const r = await raw(`/v1/things/${name}`);
      // Before: `a%5cb` reached the handler as `a\b` (a 404 naming it), where the data plane refuses it.
      assert.equal(r.status, 400, name);
      assert.equal(r.body.error?.code, 'invalid_request', name);
    }
  } finally {
    await api.close();
  }
});

test('admin router: a 405 says in Allow which methods the resource takes (RFC 9110 §15.5.6); a 404 has no Allow', async () => {
  const router = new AdminRouter(undefined);
  const ok = () => ({ body: {} });
  router.add('GET', '/v1/things/{name}', ok);
  router.add('PUT', '/v1/things/{name}', ok);
  router.add('DELETE', '/v1/things/{name}', ok);
  router.add('POST', '/v1/things', ok);
  const api = await serve(router);
  try {
    const wrong = await fetch(`${api.base}/v1/things/a`, { method: 'PATCH' });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'GET, PUT, DELETE');
    assert.equal(((await wrong.json()) as { error: { code: string } }).error.code, 'method_not_allowed');
    const missing = await fetch(`${api.base}/v1/nothing`, { method: 'PATCH' });
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('allow'), null);
  } finally {
    await api.close();
  }
});

/** One request with its headers exactly as given (Host included, which fetch would set itself). */
function send(base: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; code?: string; message?: string }> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(base);
    const req = httpRequest({ host: hostname, port, method, path, headers: body === undefined ? headers : { 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        const error = text ? (JSON.parse(text) as { error?: { code: string; message: string } }).error : undefined;
        resolve({ status: res.statusCode!, code: error?.code, message: error?.message });
      });
    });
    req.on('error', reject).end(body);
  });
}

/** A router with a JSON route, a route reading the raw text (as apply does) and an open route; `calls` counts what ran. */
function guardedRouter(token?: string): { router: AdminRouter; calls: string[] } {
  const calls: string[] = [];
  const router = new AdminRouter(token, pino({ level: 'silent' }));
  router.add('POST', '/v1/developers', async (req) => (calls.push(`json ${JSON.stringify(await req.json())}`), { status: 201, body: {} }));
  router.add('POST', '/v1/apply', async (req) => (calls.push(`text ${await req.text()}`), { body: {} }), { yaml: true });
  router.add('POST', '/v1/developers/{email}', () => (calls.push('action'), { body: {} }));
  router.add('GET', '/healthz', () => ({ body: {} }), { open: true });
  return { router, calls };
}

test('admin router: what a web page makes a browser send (another Origin, Sec-Fetch-Site cross-site or same-site) is a 403, before any handler', async () => {
  for (const token of [undefined, 's3cret']) {
    const { router, calls } = guardedRouter(token);
    const api = await serve(router);
    const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    const host = new URL(api.base).host;
    try {
      // The three requests of the report's page, as a cross-site no-cors fetch sends them (before: 201, a key planted).
      const csrf = { ...auth, 'content-type': 'text/plain;charset=UTF-8', origin: 'https://evil.example', 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors' };
      for (const headers of [
        csrf,
        { ...auth, 'content-type': 'application/json', origin: 'https://evil.example' },
        { ...auth, 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' },
        // Another port of localhost is the same site, not the same origin: a dev server's page is refused too.
        { ...auth, 'content-type': 'application/json', origin: 'http://localhost:3000', 'sec-fetch-site': 'same-site' },
        { ...auth, 'content-type': 'application/json', origin: 'null' },
      ]) {
        const r = await send(api.base, 'POST', '/v1/developers', headers, '{"email":"mallory@evil.example"}');
        assert.deepEqual([r.status, r.code], [403, 'cross_site_request'], `${token ? 'token' : 'no token'}: ${JSON.stringify(headers)}`);
      }
      assert.equal((await send(api.base, 'POST', '/v1/developers/x?action=revoke', { ...auth, origin: 'https://evil.example' })).status, 403);
      assert.equal((await send(api.base, 'GET', '/healthz', { 'sec-fetch-site': 'cross-site' })).status, 403);
      assert.match((await send(api.base, 'GET', '/healthz', { origin: 'https://evil.example' })).message!, /Origin: "https:\/\/evil\.example"/);
      assert.deepEqual(calls, []);
      // The user's own requests: a typed URL (none), the admin API's own origin, a command line (neither header).
      for (const headers of [{ 'sec-fetch-site': 'none' }, { 'sec-fetch-site': 'same-origin', origin: `http://${host}` }, {}] as Record<string, string>[]) {
        const r = await send(api.base, 'POST', '/v1/developers', { ...auth, 'content-type': 'application/json', ...headers }, '{"email":"ada@example.com"}');
        assert.equal(r.status, 201, JSON.stringify(headers));
      }
    } finally {
      await api.close();
    }
  }
});

test('admin router: without a token only loopback names are answered (a DNS-rebound page names its own); with one, any', async () => {
  const open = await serve(guardedRouter().router);
  const guarded = await serve(guardedRouter('s3cret').router);
  const port = new URL(open.base).port;
  try {
    for (const host of [`127.0.0.1:${port}`, `127.0.0.2:${port}`, `localhost:${port}`, `LocalHost:${port}`, `[::1]:${port}`, 'localhost']) {
      assert.equal((await send(open.base, 'GET', '/healthz', { host })).status, 200, host);
    }
    // Before: 200, so a rebound page read every developer, app and key it made.
    for (const host of [`rebind.evil.example:${port}`, 'rebind.evil.example', `localhost.evil.example:${port}`, `127.0.0.1.nip.io:${port}`, `[::2]:${port}`]) {
      const r = await send(open.base, 'POST', '/v1/developers', { host, 'content-type': 'application/json' }, '{}');
      assert.deepEqual([r.status, r.code], [403, 'host_not_loopback'], host);
      assert.equal((await send(open.base, 'GET', '/healthz', { host })).status, 403, host);
    }
    // With a token the admin port listens on every interface, reached under names of its own.
    assert.equal((await send(guarded.base, 'GET', '/healthz', { host: `gateway.internal:${port}` })).status, 200);
  } finally {
    await open.close();
    await guarded.close();
  }
});

test('admin router: a body must be JSON (YAML too where the route reads text), which a page cannot send to another site without a preflight', async () => {
  const { router, calls } = guardedRouter();
  const api = await serve(router);
  try {
    for (const type of ['text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', undefined]) {
      const headers: Record<string, string> = type ? { 'content-type': type } : {};
      for (const path of ['/v1/developers', '/v1/apply', '/v1/developers/x?action=revoke']) {
        const r = await send(api.base, 'POST', path, headers, '{"email":"ada@example.com"}');
        assert.deepEqual([r.status, r.code], [415, 'unsupported_media_type'], `${type} ${path}`);
      }
    }
    assert.deepEqual((await send(api.base, 'POST', '/v1/developers', { 'content-type': 'application/yaml' }, 'email: a')).status, 415);
    assert.deepEqual(calls, []);
    assert.equal((await send(api.base, 'POST', '/v1/developers', { 'content-type': 'Application/JSON; charset=utf-8' }, '{"a":1}')).status, 201);
    for (const type of ['application/yaml', 'application/x-yaml', 'text/yaml', 'application/json']) {
      assert.equal((await send(api.base, 'POST', '/v1/apply', { 'content-type': type }, 'a: 1')).status, 200, type);
    }
    // No body, no content-type needed (an action, a DELETE).
    assert.equal((await send(api.base, 'POST', '/v1/developers/x?action=revoke', {})).status, 200);
    assert.equal(calls.length, 6);
  } finally {
    await api.close();
  }
});
