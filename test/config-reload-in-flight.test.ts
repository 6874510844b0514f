// A request finishes with the configuration and hooks it started with, whatever a reload or an API-management change
// installs meanwhile (README, Configuration reference): its response phase ran through the new hooks, which had no
// response flow (502 "this.hooks.respond is not a function"), or a new ExtensionChain that knew nothing of its stream
// (500 extension_failed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { loadConfig } from '../src/config/load.js';
import { startGateway } from '../src/gateway/gateway.js';
import type { GatewayHooks } from '../src/gateway/hooks.js';
import { RoundRobinPicker } from '../src/scheduler/round-robin.js';
import { waitFor } from '../src/sim/testing.js';
import { bareDataPlane } from './helpers/bare-data-plane.js';
import { poolAndModel, poolAndModelYaml } from './helpers/manifests.js';
import { json, sleep, startStub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const CHAT = (extra = {}) => JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], ...extra });

test('the data plane: a request keeps the hooks and configuration it started with', async (t) => {
  const stub = await startStub(async (r) => {
    if (r.body?.slow) await sleep(300);
    json(r.res, 200, { ok: true });
  });
  const completed: string[] = [];
  const tagging: GatewayHooks = {
    respond: () => ({ headers: (_status, headers) => void (headers['x-tagged'] = 'yes') }),
    complete: () => void completed.push('tagging'),
  };
  const dp = bareDataPlane(loadConfig([], poolAndModel([stub.url])), new RoundRobinPicker(), tagging);
  const server = createServer(dp.handle).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/chat/completions`;
  t.after(async () => {
    server.close();
    await stub.close();
  });

  // Hooks without a response phase installed while the answer is on its way (an admin delete of the last response
  // policy, a reload).
  const inflight = request(url, { method: 'POST', body: CHAT({ slow: true }) });
  await waitFor(() => stub.requests.length === 1, 5000, 'the request at the model server');
  dp.hooks = {};
  const answer = await inflight;
  assert.equal(answer.statusCode, 200, await answer.body.text());
  assert.equal(answer.headers['x-tagged'], 'yes');
  await waitFor(() => completed.length === 1, 2000, 'the hooks it started with told it completed');

  // A configuration without its model installed while its body is still coming.
  const req = httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/json' } });
  const body = CHAT();
  req.write(body.slice(0, 10));
  await sleep(100);
  dp.config = loadConfig([], poolAndModel([stub.url], 'other'));
  req.end(body.slice(10));
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  res.resume();
  assert.equal(res.statusCode, 200);
  assert.equal((await request(url, { method: 'POST', body: CHAT() })).statusCode, 404, 'a request after the change sees it');
});

test('an ExtensionChain: a request in flight across a reload is answered, whether the chain changed or not', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-reload-chain-'));
  const stub = await startStub(async (r) => {
    if (r.body?.slow) await sleep(500);
    json(r.res, 200, { choices: [{ index: 0, message: { role: 'assistant', content: 'hi' } }] });
  });
  // The extension: another tollgate's ext_proc listener, a policy decision point without policies.
  const extension = await startGateway({ configPaths: [], manifests: poolAndModel([stub.url]), ...LOOPBACK, extprocPort: 0, extproc: { roles: ['pdp'] } });
  const chain = (timeout: string) => `---
apiVersion: tollgate.dev/v1alpha1
kind: ExtensionChain
metadata: { name: corp }
spec:
  extensions:
    - name: pdp
      address: 127.0.0.1:${extension.extprocPort}
      supportedEvents: [RequestHeaders, RequestBody, ResponseHeaders, ResponseBody]
      timeout: ${timeout}
---
apiVersion: tollgate.dev/v1alpha1
kind: GatewaySettings
metadata: { name: s }
spec: { server: { shutdownGracePeriod: 100ms } }
`;
  const file = join(dir, 'config.yaml');
  writeFileSync(file, poolAndModelYaml(stub.url) + chain('5s'));
  const gw = await startGateway({ configPaths: [file], ...LOOPBACK });
  t.after(async () => {
    await gw.close();
    await extension.close();
    await stub.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const chat = async (extra = {}) => {
    const r = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', body: CHAT(extra) });
    return `${r.statusCode} ${await r.body.text()}`;
  };
  const acrossReload = async (config: string) => {
    const inflight = chat({ slow: true });
    const seen = stub.requests.length;
    await waitFor(() => stub.requests.length > seen, 5000, 'the slow request at the model server');
    writeFileSync(file, config);
    assert.equal(await gw.reload(), true);
    return inflight;
  };
  assert.match(await chat(), /^200 /);

  // Another model, the chain alone: before, a new chain all the same, which opened a stream at response_headers.
  const other = poolAndModelYaml(stub.url) + chain('5s') + '---\n' + poolAndModelYaml(stub.url, 'other').split('---\n')[1];
  assert.match(await acrossReload(other), /^200 /);
  // The chain changed: the request keeps the old one past the grace period, until it could have ended.
  assert.match(await acrossReload(poolAndModelYaml(stub.url) + chain('4s')), /^200 /);
  assert.match(await chat(), /^200 /);
});
