// The upstream pools' idle connections: closed by tollgate before the model server's own idle timeout closes them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { DEFAULT_SETTINGS } from '../config/settings.js';
import { UpstreamPools } from './upstream-pools.js';

test("an idle upstream connection is closed by tollgate before uvicorn's 5 s idle timeout would close it under a request", { timeout: 20_000 }, async () => {
  let closedBy: 'tollgate' | 'server' | undefined;
  let closed: () => void = () => {};
  const done = new Promise<void>((resolve) => (closed = resolve));
  // As uvicorn answers (no keep-alive hint) and keeps an idle connection: timeout_keep_alive, 5 s by default.
  const upstream = createServer((socket) => {
    let idle: NodeJS.Timeout | undefined;
    socket.on('error', () => {});
    socket.once('data', () => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}');
      idle = setTimeout(() => {
        closedBy ??= 'server';
        socket.end();
      }, 5000);
    });
    socket.on('end', () => {
      closedBy ??= 'tollgate';
      socket.end();
    });
    socket.on('close', () => {
      clearTimeout(idle);
      closed();
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const pools = new UpstreamPools(DEFAULT_SETTINGS);
  try {
    const r = await pools.get(`http://127.0.0.1:${(upstream.address() as { port: number }).port}`).request({ path: '/', method: 'GET' });
    assert.equal(await r.body.text(), '{}');
    await done;
    // Before: kept as long as server.keepAliveTimeout (5 s), so the next request raced the server's close.
    assert.equal(closedBy, 'tollgate');
  } finally {
    upstream.close();
    await pools.close();
  }
});
