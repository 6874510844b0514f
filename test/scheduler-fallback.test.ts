// A request whose picked endpoint refuses it (a 503 before any byte) goes on to the next endpoint of its pick: it is
// counted there while it runs — the fleet view's in-flight, as the picker's balancing reads it — not on the endpoint
// that refused it (before: in flight nowhere until it ended).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { waitFor } from '../src/sim/testing.js';
import { manifest } from './helpers/manifests.js';
import { json, queuedMetrics, startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

let refusing: Stub;
let serving: Stub;
let gw: Gateway;
let release!: () => void;
const released = new Promise<void>((r) => (release = r));

before(async () => {
  refusing = await startStub((r) => json(r.res, 503, { error: { message: 'overloaded' } }));
  serving = await startStub(async (r) => {
    await released;
    json(r.res, 200, { id: 'x', object: 'chat.completion', choices: [], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } });
  });
  // The serving endpoint looks busier, so the picker tries the refusing one first and keeps the other as fallback.
  serving.metrics = queuedMetrics(3);
  gw = await startGateway({
    configPaths: [],
    manifests: [
      manifest('InferencePool', 'pool', { endpoints: [refusing.url, serving.url] }),
      manifest('InferenceModel', 'm', { modelName: 'm', criticality: 'Critical', poolRef: { name: 'pool' } }),
    ],
    ...LOOPBACK,
    db: 'sqlite::memory:',
  });
});

after(async () => {
  release();
  await gw?.close();
  await refusing?.close();
  await serving?.close();
});

interface EndpointView {
  address: string;
  inFlight: number;
}

async function inFlight(): Promise<Record<string, number>> {
  const pools = ((await (await fetch(`${gw.adminUrl}/v1/pools`)).json()) as { items: { endpoints: EndpointView[] }[] }).items;
  return Object.fromEntries(pools[0].endpoints.map((e) => [e.address, e.inFlight]));
}

test('a request that goes on to a fallback is in flight there while it runs, and nowhere once it ends', async () => {
  const address = (s: Stub) => `127.0.0.1:${s.port}`;
  await waitFor(async () => (await fetch(`${gw.adminUrl}/readyz`)).status === 200, 10_000, 'the pool ready', 20);
  const answer = fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
  });
  await waitFor(() => serving.requests.length === 1, 10_000, 'the fallback reached', 10);
  assert.equal(refusing.requests.length, 1, 'the first choice was tried first');
  assert.deepEqual(await inFlight(), { [address(refusing)]: 0, [address(serving)]: 1 });
  release();
  assert.equal((await answer).status, 200);
  await waitFor(async () => Object.values(await inFlight()).every((n) => n === 0), 5000, 'nothing in flight', 10);
});
