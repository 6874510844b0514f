// tollgate as Envoy's endpoint picker with its pool saturated: a subset hint that is empty or names no endpoint of the
// pool gets the Endpoint Picker Protocol's immediate 503 at once, standard or sheddable. It used to wait in the
// flow-control queue for room it could never use (longer than Envoy's message timeout), and a sheddable one got 429.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { ExtprocClient, type ExtprocCall } from '../src/extproc/client.js';
import type { ProcessingResponse } from '../src/extproc/messages.js';
import { toStruct } from '../src/extproc/struct.js';
import { fakeMetricsServer, vllmPage, type FakeMetricsServer } from '../src/scheduler/testing.js';
import { until } from './helpers/apim-admin.js';
import { headerMap } from './helpers/extproc-envoy.js';
import { manifest } from './helpers/manifests.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

let server: FakeMetricsServer;
let gw: Gateway;
let client: ExtprocClient;
let inPool: string;

before(async () => {
  // Ten waiting: above the saturation threshold of 5, so a standard request waits for room and a sheddable one is shed.
  server = await fakeMetricsServer(vllmPage({ waiting: 10, running: 4, model: 'm' }));
  inPool = new URL(server.url).host;
  gw = await startGateway({
    configPaths: [],
    manifests: [
      manifest('InferencePool', 'pool', { endpoints: [server.url] }),
      manifest('InferenceModel', 'm', { modelName: 'm', poolRef: { name: 'pool' } }),
      manifest('InferenceModel', 's', { modelName: 's', poolRef: { name: 'pool' }, criticality: 'Sheddable' }),
    ],
    ...LOOPBACK,
    extprocPort: 0,
    extproc: { roles: ['epp'] },
  });
  client = new ExtprocClient({ address: `127.0.0.1:${gw.extprocPort}` });
  await until(async () => (await fetch(`${gw.adminUrl}/readyz`)).status, (s) => s === 200, 10_000, 'the endpoint scraped');
});

after(async () => {
  client.close();
  await gw.close();
  await server.close();
});

async function queueLength(): Promise<number> {
  return ((await (await fetch(`${gw.adminUrl}/v1/pools/pool`)).json()) as { queueLength: number }).queueLength;
}

/** Sends a request's headers (with the subset hint, when given) and body; the body's answer is the decision. */
async function decide(model: string, subset?: string[]): Promise<{ call: ExtprocCall; answer: Promise<ProcessingResponse | Error> }> {
  const call = client.open(5_000);
  const body = Buffer.from(JSON.stringify({ model, messages: [{ role: 'user', content: 'hello' }], max_tokens: 4 }));
  const headers: [string, string][] = [[':method', 'POST'], [':path', '/v1/chat/completions'], [':authority', 'gw'], [':scheme', 'http'], ['content-type', 'application/json'], ['content-length', String(body.length)]];
  const metadata = subset && { metadata_context: { filter_metadata: { 'envoy.lb.subset_hint': toStruct({ 'x-gateway-destination-endpoint-subset': subset }) } } };
  await call.send({ request_headers: { headers: headerMap(headers), end_of_stream: false }, ...metadata });
  return { call, answer: call.send({ request_body: { body, end_of_stream: true } }).catch((err: Error) => err) };
}

test('a subset hint with no endpoint of the saturated pool: 503 at once, nothing queued, whatever the priority', async () => {
  // Without a hint the pool is saturated indeed: the request waits in the queue.
  const queued = await decide('m');
  await until(queueLength, (n) => n === 1, 10_000, 'the request without a hint queued');

  for (const [model, subset] of [['m', []], ['m', ['10.9.9.9:1']], ['s', []], ['s', ['10.9.9.9:1']]] as [string, string[]][]) {
    const { call, answer } = await decide(model, subset);
    const a = await answer;
    call.end();
    assert.ok(!(a instanceof Error), `${model} ${JSON.stringify(subset)}: ${String(a)}`);
    assert.equal(a.immediate_response?.status.code, 503, `${model} ${JSON.stringify(subset)}`);
    assert.equal(JSON.parse(a.immediate_response.body!.toString()).error.code, 'no_healthy_endpoints');
    assert.equal(await queueLength(), 1, `${model} ${JSON.stringify(subset)}: nothing more queued`);
  }

  // A hint naming the pool's endpoint is honoured as before: the request waits for room like any other.
  const hinted = await decide('m', [inPool]);
  await until(queueLength, (n) => n === 2, 10_000, 'the request with a satisfiable hint queued');

  for (const r of [queued, hinted]) r.call.cancel();
  await until(queueLength, (n) => n === 0, 10_000, 'the queue empty');
});
