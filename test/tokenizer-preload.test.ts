// A gateway that meters streams loads the tokenizer before it serves, not at the first stream cut short: that load
// (~200 ms on the event loop) held every request in flight behind a client's hang-up (`bench routing` saw the next
// four requests' first tokens late by up to 0.6 simulated s). One with nothing to meter does not load it.
// own process: nothing else in it may have loaded the tokenizer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { compileConfig } from '../src/config/runtime-config.js';
import { startGateway } from '../src/gateway/gateway.js';
import { manifest, settings } from './helpers/manifests.js';
import { startStub } from './helpers/stub-upstream.js';
import { waitFor } from '../src/sim/testing.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const tokenizerLoaded = () => Object.keys(createRequire(import.meta.url).cache).some((path) => path.includes('gpt-tokenizer'));

test('the tokenizer is loaded when a configuration that meters streams is applied, not by the first cut stream', async () => {
  // Never answers: a client that hangs up on it leaves a request a model server was working on.
  const stub = await startStub(() => {});
  const manifests = (metered: boolean) => [
    manifest('InferencePool', 'pool', { endpoints: [stub.url] }),
    manifest('InferenceModel', 'm', { modelName: 'm', poolRef: { name: 'pool' } }),
    settings({ logging: { level: 'silent' }, analytics: { enabled: false }, metrics: { requests: metered } }),
  ];
  const gw = await startGateway({ configPaths: [], manifests: manifests(false), ...LOOPBACK });
  try {
    assert.equal(tokenizerLoaded(), false, 'nothing to meter: not loaded');
    // Nothing reads a hang-up's usage estimate either: no prompt is counted for it.
    const abort = new AbortController();
    const hungUp = fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', signal: abort.signal, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }) }).catch(() => 'aborted');
    await waitFor(() => stub.requests.length === 1, 5000, 'the request upstream');
    abort.abort();
    assert.equal(await hungUp, 'aborted');
    await waitFor(() => gw.dataPlane.inflight === 0, 5000, 'the request over');
    assert.equal(tokenizerLoaded(), false, 'a hang-up with nothing metered: not loaded');
    gw.apply(compileConfig(manifests(true)));
    assert.equal(tokenizerLoaded(), true, 'metering turned on by a reload: loaded then');
  } finally {
    await gw.close();
    await stub.close();
  }
});
