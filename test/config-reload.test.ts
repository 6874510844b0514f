// Hot reload from watched files: a valid change applies without dropping in-flight requests;
// an invalid change is logged and the last good configuration stays.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { pino } from 'pino';
import { startGateway } from '../src/gateway/gateway.js';
import { waitFor } from '../src/sim/testing.js';
import { json, sleep, startStub } from './helpers/stub-upstream.js';

function yamlFor(url: string, model: string): string {
  return `apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: { name: pool }
spec: { endpoints: ["${url}"] }
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: { name: model }
spec: { modelName: ${model}, poolRef: { name: pool } }
`;
}

test('hot reload', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-reload-'));
  const stub = await startStub(async (r) => {
    if (r.body?.slow) await sleep(600);
    json(r.res, 200, { model: r.body?.model });
  });
  const logs: any[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  writeFileSync(join(dir, 'config.yaml'), yamlFor(stub.url, 'first'));
  const gw = await startGateway({ configPaths: [dir], port: 0, adminPort: 0, host: '127.0.0.1', logger });
  after(async () => {
    await gw.close();
    await stub.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const ask = (model: string, extra = {}) =>
    request(`${gw.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model, messages: [{ role: 'user', content: 'x' }], ...extra }) });

  // A slow request is in flight while the configuration changes under it.
  const inflight = ask('first', { slow: true });
  await sleep(100);
  writeFileSync(join(dir, 'config.yaml'), yamlFor(stub.url, 'second'));
  await waitFor(async () => (await ask('second')).statusCode === 200, 5000, 'the reloaded model to answer', 50);
  const slow = await inflight;
  assert.equal(slow.statusCode, 200);
  assert.deepEqual(await slow.body.json(), { model: 'first' });
  assert.equal((await ask('first')).statusCode, 404);

  // An invalid change: logged, and 'second' keeps working.
  writeFileSync(join(dir, 'config.yaml'), yamlFor(stub.url, 'third').replace('modelName', 'modelNme'));
  await waitFor(() => logs.some((l) => l.msg?.includes('configuration change rejected')), 5000, 'the rejection to be logged', 50);
  const rejected = logs.find((l) => l.msg?.includes('configuration change rejected'));
  assert.match(rejected.problems[0], /config\.yaml document 1 \(InferenceModel\/model\): spec/);
  assert.equal((await ask('second')).statusCode, 200);
  assert.equal((await ask('third')).statusCode, 404);
});
