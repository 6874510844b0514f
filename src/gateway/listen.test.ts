import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_SETTINGS } from '../config/settings.js';
import { applyListenerTimeouts, createListener, listen } from './listen.js';

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
