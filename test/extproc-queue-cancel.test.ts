// tollgate as Envoy's endpoint picker with every model server saturated: a request waits in the flow-control queue,
// and when Envoy cancels the ext_proc stream (its client went away) the request leaves the queue as aborted instead
// of being picked for a model server once there is room.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { ExtprocClient } from '../src/extproc/client.js';
import { fakeMetricsServer, vllmPage, type FakeMetricsServer } from '../src/scheduler/testing.js';
import { parseQueueCounts } from '../bench/routing-target.js';
import { until } from './helpers/apim-admin.js';
import { headerMap } from './helpers/extproc-envoy.js';
import { manifest } from './helpers/manifests.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

let server: FakeMetricsServer;
let gw: Gateway;
let client: ExtprocClient;

before(async () => {
  // Ten waiting: above the saturation threshold of 5, so a standard request waits for room.
  server = await fakeMetricsServer(vllmPage({ waiting: 10, running: 4, model: 'm' }));
  gw = await startGateway({
    configPaths: [],
    manifests: [manifest('InferencePool', 'pool', { endpoints: [server.url] }), manifest('InferenceModel', 'm', { modelName: 'm', poolRef: { name: 'pool' } })],
    ...LOOPBACK,
    extprocPort: 0,
    extproc: { roles: ['epp'] },
  });
  client = new ExtprocClient({ address: `127.0.0.1:${gw.extprocPort}` });
});

after(async () => {
  client.close();
  await gw.close();
  await server.close();
});

async function pool(): Promise<{ queueLength: number; decisions: unknown[] }> {
  return (await (await fetch(`${gw.adminUrl}/v1/pools/pool`)).json()) as { queueLength: number; decisions: unknown[] };
}

async function aborted(): Promise<number> {
  return parseQueueCounts(await (await fetch(`${gw.adminUrl}/metrics`)).text())['standard/aborted'] ?? 0;
}

test('a cancelled stream takes its queued request out of the flow-control queue', async () => {
  await until(async () => (await fetch(`${gw.adminUrl}/readyz`)).status, (s) => s === 200, 10_000, 'the endpoint scraped');
  const body = Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello' }], max_tokens: 4 }));
  const call = client.open(30_000);
  const headers: [string, string][] = [[':method', 'POST'], [':path', '/v1/chat/completions'], [':authority', 'gw'], [':scheme', 'http'], ['content-type', 'application/json'], ['content-length', String(body.length)]];
  await call.send({ request_headers: { headers: headerMap(headers), end_of_stream: false } });
  const answer = call.send({ request_body: { body, end_of_stream: true } }).catch((err: unknown) => err);
  await until(pool, (p) => p.queueLength === 1, 10_000, 'the request queued');
  call.cancel();
  assert.ok((await answer) instanceof Error);
  await until(pool, (p) => p.queueLength === 0, 10_000, 'the queue empty');
  assert.equal(await aborted(), 1);
  // Room again: a request still queued would be picked now.
  server.serve(vllmPage({ waiting: 0, running: 0, model: 'm' }));
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual((await pool()).decisions, []);
});
