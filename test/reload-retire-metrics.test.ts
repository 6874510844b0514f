// The /metrics series of the pools, models and target models a reload removed leave once the requests begun under the
// older configuration are over (they record on them as they finish); they stayed for good, ~130 series per removed
// model in every scrape, the dead ones exporting frozen values.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { waitFor } from '../src/sim/testing.js';
import { json, startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

let stub: Stub;
let gw: Gateway;
let dir: string;
/** Requests for the target model `retired-v1`, held by the model server until the test lets them go. */
const held: (() => void)[] = [];

const pool = (name: string) => `---
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: { name: ${name} }
spec: { endpoints: ["${stub.url}"] }
`;
const model = (name: string, poolName: string, target = name) => `---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: { name: ${name} }
spec: { modelName: ${name}, poolRef: { name: ${poolName} }, targetModels: [{ name: ${target}, weight: 1 }] }
`;

const write = (yaml: string) => writeFileSync(join(dir, 'config.yaml'), yaml);
const chat = async (name: string) => {
  const r = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: name, messages: [{ role: 'user', content: 'hi' }] }) });
  return `${r.statusCode} ${await r.body.text()}`;
};
/** The request series naming the removed pool, model or target model. */
const removedSeries = async () =>
  (await (await request(`${gw.adminUrl}/metrics`)).body.text()).split('\n').filter((l) => !l.startsWith('#') && /"(canary|retired|retired-v1)"/.test(l) && !l.startsWith('tollgate_model_info'));

before(async () => {
  stub = await startStub(async (r) => {
    if (r.body?.model === 'retired-v1') await new Promise<void>((resolve) => held.push(resolve));
    json(r.res, 200, { choices: [{ index: 0, message: { role: 'assistant', content: 'hi' } }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } });
  });
  dir = mkdtempSync(join(tmpdir(), 'tollgate-retire-metrics-'));
  write(pool('main') + pool('canary') + model('m', 'main') + model('retired', 'canary', 'retired-v1'));
  gw = await startGateway({ configPaths: [dir], ...LOOPBACK });
});

after(async () => {
  await gw.close();
  await stub.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a removed model keeps its series while a request begun before the reload is in flight, and loses them once it is over', async () => {
  const first = chat('retired');
  await waitFor(() => held.length === 1, 5000, 'the request at the model server');
  held.shift()!();
  assert.match(await first, /^200 /);
  assert.match(await chat('m'), /^200 /);
  const inflight = chat('retired');
  await waitFor(() => held.length === 1, 5000, 'the request at the model server');
  const seriesBefore = await removedSeries();
  for (const name of ['inference_objective_request_total', 'tollgate_pool_requests_total', 'inference_objective_running_requests', 'tollgate_requests_total']) {
    assert.ok(seriesBefore.some((l) => l.startsWith(`${name}{`)), `${name} of the model to remove`);
  }

  write(pool('main') + model('m', 'main'));
  assert.equal(await gw.reload(), true);
  assert.ok((await removedSeries()).length > 0, 'kept while the request begun under them is in flight');
  held.shift()!();
  assert.match(await inflight, /^200 /);
  await waitFor(async () => (await removedSeries()).length === 0, 20_000, 'the series of the removed pool, model and target model gone');

  const text = await (await request(`${gw.adminUrl}/metrics`)).body.text();
  assert.match(text, /^inference_objective_request_total\{model_name="m",target_model_name="m"\} 1$/m, 'the kept model keeps its series');
  assert.match(text, /^tollgate_requests_total\{product="",model="m",status="200"\} 1$/m);
  assert.match(await chat('m'), /^200 /);
  assert.match(await (await request(`${gw.adminUrl}/metrics`)).body.text(), /^tollgate_pool_requests_total\{pool="main",model_name="m"\} 2$/m, 'and counts on');
});
