// An endpoint whose /metrics answers while every inference request to it hangs, end to end over loopback: it looks
// idle, so the picker offers it first; a stream sent to it goes on to the next endpoint once the first-byte limit is
// over (the client gets that endpoint's answer, not a 504), and the hung endpoint stays in its pool, resting rather
// than taken out.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startGateway } from '../src/gateway/gateway.js';
import { waitFor } from '../src/sim/testing.js';
import type { PoolView } from '../src/scheduler/fleet-view.js';
import { collectingLogger } from './helpers/log-lines.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';
import { poolAndModel, settings } from './helpers/manifests.js';
import { queuedMetrics, startStub } from './helpers/stub-upstream.js';

describe('an endpoint whose inference hangs while its metrics answer', async () => {
  const hung = await startStub(() => new Promise<void>(() => {}));
  const good = await startStub(({ res }) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end('data: {"choices":[{"delta":{"content":"good"}}]}\n\ndata: [DONE]\n\n');
  });
  // Two queued requests make the picker prefer the idle-looking hung endpoint.
  good.metrics = queuedMetrics(2);
  const { logger, lines } = collectingLogger();
  const gw = await startGateway({
    configPaths: [],
    manifests: [...poolAndModel([hung.url, good.url]), settings({ upstream: { firstByteTimeout: '300ms' } })],
    ...LOOPBACK,
    logger,
  });
  after(async () => {
    await gw.close();
    await Promise.all([hung.close(), good.close()]);
  });

  test('a stream it does not start in time is answered by the next endpoint, and the hung one is rested, not taken out', { timeout: 30_000 }, async () => {
    for (let i = 0; i < 3; i++) {
      const r = await request(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': `hung-${i}` },
        body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: `question ${i}` }] }),
      });
      // Before: 504 upstream_timeout after the hung endpoint's first-byte limit, the other endpoint never tried.
      assert.equal(r.statusCode, 200, `request ${i}`);
      assert.match(await r.body.text(), /"content":"good"/);
    }
    await waitFor(() => lines.some((l) => l.msg === 'request' && l.requestId === 'hung-0'), 5000, 'the access log line');
    const first = lines.find((l) => l.msg === 'request' && l.requestId === 'hung-0')!;
    assert.deepEqual([first.attempts, first.endpoint, first.status], [2, new URL(good.url).host, 200]);
    assert.ok(hung.requests.length >= 1);
    const view = (await (await request(`${gw.adminUrl}/v1/pools/pool`)).body.json()) as PoolView;
    const hungView = view.endpoints.find((e) => e.url === hung.url)!;
    assert.deepEqual([hungView.status, hungView.healthy], ['ready', true]);
  });
});
