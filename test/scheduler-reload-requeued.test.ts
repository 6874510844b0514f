// Requests waiting in a pool's flow-control queue across a reload that changes what the pool serves: each goes out
// under the configuration in force when it leaves the queue. A blue/green swap (new servers, new target model) sends
// the new servers the new target; a model the pool no longer serves is refused with a retryable 503.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Manifest } from '../src/config/manifest.js';
import { compileConfig } from '../src/config/runtime-config.js';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { waitFor } from '../src/sim/testing.js';
import { call, codeOf } from './helpers/apim-admin.js';
import { manifest, settings } from './helpers/manifests.js';
import { IDLE_METRICS, queuedMetrics, startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

/** Pool `pool` over `url`, model `chat` on `poolName` sent upstream as `target`. */
function manifests(url: string, target: string, extra: Manifest[] = [], poolName = 'pool'): Manifest[] {
  return [
    manifest('InferencePool', 'pool', { endpoints: [url] }),
    manifest('InferenceModel', 'chat', { modelName: 'chat', poolRef: { name: poolName }, targetModels: [{ name: target, weight: 1 }] }),
    settings({ logging: { level: 'silent' } }),
    ...extra,
  ];
}

const chat = (gw: Gateway, content: string) =>
  call(gw.url, 'POST', '/v1/chat/completions', { model: 'chat', messages: [{ role: 'user', content }] }).then((a) => ({
    status: a.status,
    code: codeOf(a),
    model: (a.body as { echo?: { model?: string } }).echo?.model,
  }));

/** Starts a gateway on `first`, saturates its server and queues two requests. */
async function queuedOn(old: Stub, first: Manifest[]) {
  const gw = await startGateway({ configPaths: [], manifests: first, ...LOOPBACK });
  old.metrics = queuedMetrics(10);
  await waitFor(() => gw.picker.view('pool')!.saturated, 5000, 'the pool saturated');
  const queued = [chat(gw, 'q0'), chat(gw, 'q1')];
  await waitFor(() => gw.picker.view('pool')!.queueLength === 2, 5000, 'the requests queued');
  return { gw, queued };
}

test('a reload that swaps a pool\'s servers and its target model: the queued requests ask the new servers for the new target', async () => {
  const [blue, green] = [await startStub(), await startStub()];
  const { gw, queued } = await queuedOn(blue, manifests(blue.url, 'llama-3.1'));
  try {
    gw.apply(compileConfig(manifests(green.url, 'llama-3.2')));
    // Before: both went to the green server asking for llama-3.1, which it does not run (a vLLM answers 404).
    assert.deepEqual(await Promise.all(queued), [
      { status: 200, code: undefined, model: 'llama-3.2' },
      { status: 200, code: undefined, model: 'llama-3.2' },
    ]);
    assert.equal(blue.requests.length, 0);
    assert.deepEqual((await chat(gw, 'after')).model, 'llama-3.2');
  } finally {
    await gw.close();
    await Promise.all([blue.close(), green.close()]);
  }
});

test('a reload whose own change lets the queue go at once (flow control off): the requests take its target, not the old one', async () => {
  const stub = await startStub();
  const { gw, queued } = await queuedOn(stub, manifests(stub.url, 'v1'));
  try {
    const off = manifest('EndpointPickerConfig', 'picker', { plugins: [{ type: 'queue-scorer' }], flowControl: { enabled: false } });
    // The pool lets its queue go while the reload applies, not at a later scrape: the configuration in force is the new one.
    gw.apply(compileConfig(manifests(stub.url, 'v2', [off])));
    assert.deepEqual(await Promise.all(queued), [
      { status: 200, code: undefined, model: 'v2' },
      { status: 200, code: undefined, model: 'v2' },
    ]);
  } finally {
    await gw.close();
    await stub.close();
  }
});

test('a reload that moves the model to another pool: the requests queued in the old one are refused 503, sent nowhere', async () => {
  const [stub, other] = [await startStub(), await startStub()];
  const { gw, queued } = await queuedOn(stub, manifests(stub.url, 'v1'));
  try {
    gw.apply(compileConfig(manifests(stub.url, 'v1', [manifest('InferencePool', 'other', { endpoints: [other.url] })], 'other')));
    stub.metrics = IDLE_METRICS;
    // Before: both were sent to the old pool's server, which the configuration no longer has serve `chat`.
    assert.deepEqual(await Promise.all(queued), [
      { status: 503, code: 'no_healthy_endpoints', model: undefined },
      { status: 503, code: 'no_healthy_endpoints', model: undefined },
    ]);
    assert.equal(stub.requests.length, 0);
    assert.equal((await chat(gw, 'after')).status, 200, 'a retry goes to the pool that serves it now');
    assert.equal(other.requests.length, 1);
  } finally {
    await gw.close();
    await Promise.all([stub.close(), other.close()]);
  }
});
