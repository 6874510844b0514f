// A moment when every endpoint of a pool is out (one request's connection reset, a few failed scrapes) leaves the
// flow-control queue waiting, as maxWait promises, instead of answering every queued request 503 at once.
import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { waitFor } from '../src/sim/testing.js';
import { poolAndModel, settings } from './helpers/manifests.js';
import { IDLE_METRICS, json, queuedMetrics, startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const OK = { id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }] };

function chat(g: Gateway, content: string): Promise<{ status: number; code?: string }> {
  return fetch(`${g.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content }] }),
  }).then(async (r) => ({ status: r.status, code: r.status === 200 ? undefined : ((await r.json()) as { error: { code: string } }).error.code }));
}

describe('flow-control queue while every endpoint is briefly out', () => {
  let stub: Stub | undefined;
  let gw: Gateway | undefined;
  afterEach(async () => {
    await gw?.close();
    await stub?.close();
  });

  async function start(handler: Stub['handler']): Promise<{ g: Gateway; s: Stub }> {
    const s = (stub = await startStub(handler));
    const g = (gw = await startGateway({ configPaths: [], manifests: [...poolAndModel([s.url]), settings({ logging: { level: 'silent' } })], ...LOOPBACK }));
    return { g, s };
  }

  /** The engine reports a deep queue (the pool saturates), and `n` requests wait in tollgate's queue. */
  async function queue(g: Gateway, s: Stub, n: number): Promise<Promise<{ status: number; code?: string }>[]> {
    s.metrics = queuedMetrics(10);
    await waitFor(() => g.picker.view('pool')!.saturated, 5000, 'the pool saturated');
    const queued = Array.from({ length: n }, (_, k) => chat(g, `q${k}`));
    await waitFor(() => g.picker.view('pool')!.queueLength === n, 5000, 'the requests queued');
    return queued;
  }

  const served = [{ status: 200, code: undefined }, { status: 200, code: undefined }, { status: 200, code: undefined }];

  test('a connection reset on the only endpoint: queued requests wait for it and are served', async () => {
    let reset: () => void = () => {};
    const resetting = new Promise<void>((r) => (reset = r));
    const { g, s } = await start(async (r) => {
      if (r.body?.messages?.[0]?.content === 'boom') {
        await resetting;
        r.res.destroy();
      } else json(r.res, 200, OK);
    });
    const boom = chat(g, 'boom');
    await waitFor(() => s.requests.length === 1, 5000, 'the request in flight');
    const queued = await queue(g, s, 3);
    reset();
    assert.notEqual((await boom).status, 200);
    // Before: all three were answered 503 no_healthy_endpoints right here, never sent to the model server.
    assert.equal(g.picker.view('pool')!.queueLength, 3);
    s.metrics = IDLE_METRICS;
    assert.deepEqual(await Promise.all(queued), served);
  });

  test('a few failed scrapes: queued requests wait for the next good one', async () => {
    const { g, s } = await start((r) => json(r.res, 200, OK));
    const queued = await queue(g, s, 3);
    s.metrics = 'garbage 1\n'; // a /metrics without the engine's series fails every scrape
    await waitFor(() => g.picker.view('pool')!.endpoints[0].status === 'unhealthy', 5000, 'the endpoint out');
    assert.equal(g.picker.view('pool')!.queueLength, 3);
    s.metrics = IDLE_METRICS;
    assert.deepEqual(await Promise.all(queued), served);
  });
});
