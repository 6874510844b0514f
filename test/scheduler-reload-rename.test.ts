// Renaming an InferencePool on reload (same endpoints, the model's poolRef updated) keeps the requests waiting in its
// flow-control queue: they are served by the same servers under the new name instead of a 503.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileConfig } from '../src/config/runtime-config.js';
import { startGateway } from '../src/gateway/gateway.js';
import { waitFor } from '../src/sim/testing.js';
import { call, codeOf } from './helpers/apim-admin.js';
import { manifest, settings } from './helpers/manifests.js';
import { IDLE_METRICS, queuedMetrics, startStub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

test('a pool renamed while requests wait in its queue: they are served under the new name', async () => {
  const stub = await startStub();
  const manifests = (pool: string) => [
    manifest('InferencePool', pool, { endpoints: [stub.url] }),
    manifest('InferenceModel', 'm', { modelName: 'm', poolRef: { name: pool } }),
    settings({ logging: { level: 'silent' } }),
  ];
  const gw = await startGateway({ configPaths: [], manifests: manifests('pool'), ...LOOPBACK });
  try {
    const chat = (content: string) =>
      call(gw.url, 'POST', '/v1/chat/completions', { model: 'm', messages: [{ role: 'user', content }] }).then((a) => ({ status: a.status, code: codeOf(a) }));
    stub.metrics = queuedMetrics(10);
    await waitFor(() => gw.picker.view('pool')!.saturated, 5000, 'the pool saturated');
    const queued = [chat('q0'), chat('q1')];
    await waitFor(() => gw.picker.view('pool')!.queueLength === 2, 5000, 'the requests queued');
    gw.apply(compileConfig(manifests('renamed')));
    assert.equal(gw.picker.view('pool'), undefined);
    assert.equal(gw.picker.view('renamed')!.queueLength, 2);
    stub.metrics = IDLE_METRICS;
    // Before: both were answered 503 no_healthy_endpoints (pool "pool" was removed from the configuration).
    assert.deepEqual(await Promise.all(queued), [
      { status: 200, code: undefined },
      { status: 200, code: undefined },
    ]);
    assert.equal((await chat('after')).status, 200);
  } finally {
    await gw.close();
    await stub.close();
  }
});
