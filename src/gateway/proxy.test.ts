// The proxy's commit step: an answer is not complete for the client until commit lets its last bytes go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { request } from 'undici';
import { DEFAULT_SETTINGS } from '../config/settings.js';
import { newContext } from './data-plane.js';
import { proxyRequest } from './proxy.js';
import { UpstreamPools } from './upstream-pools.js';

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as { port: number }).port}`)));
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
    const gateway = createServer((req, res) => {
      const ctx = newContext(req.method!, req.url!, req.headers, undefined);
      void proxyRequest(ctx, res, pools, {
        endpoints: [{ url: upstreamUrl, address: new URL(upstreamUrl).host }],
        path: '/v1/chat/completions',
        headers: {},
        body: null,
        maxAttempts: 1,
        firstByteTimeoutMs: 5000,
        responseTimeoutMs: 5000,
        maxBodyBytes: 1 << 20,
        commit: (end) => (ends = end),
      });
    });
    const gatewayUrl = await listen(gateway);
    try {
      const r = await request(`${gatewayUrl}/v1/chat/completions`, { method: 'POST', body: '{}' });
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
