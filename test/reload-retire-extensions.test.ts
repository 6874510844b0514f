// An ExtensionChain a reload replaced closes its clients (gRPC channels) as soon as the requests begun with it are
// over, whether they came over HTTP or ext_proc, and the series of the extensions the reload dropped leave /metrics
// then. The clients were kept for upstream.responseTimeout + flowControl.maxWait (10.5 min by default) whatever was in
// flight. A request whose headers came before the reload and its body after still calls the chain it began with.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { ExtprocClient } from '../src/extproc/client.js';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { freePort } from '../src/lib/ports.js';
import { waitFor } from '../src/sim/testing.js';
import { headerMap } from './helpers/extproc-envoy.js';
import { poolAndModel, poolAndModelYaml } from './helpers/manifests.js';
import { json, startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const CHAT = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });

/** The targets of the gRPC channels open in this process (grpc-js's channelz registry: a closed channel leaves it). */
async function openChannels(): Promise<string[]> {
  const channelz = createRequire(import.meta.url)('@grpc/grpc-js/build/src/channelz.js');
  return new Promise((resolve) =>
    channelz.getChannelzHandlers().GetTopChannels({ request: { start_channel_id: 0, max_results: 1000 } }, (_err: unknown, answer: { channel: { ref: { name: string } }[] }) =>
      resolve(answer.channel.map((c) => c.ref.name)),
    ),
  );
}

let stub: Stub;
let extension: Gateway;
let gw: Gateway;
let dir: string;
let pdp: string;
let dead: string;

/** Extension `pdp` (another tollgate's policy decision point, without policies), and optionally `dead` (failing open). */
const chain = (timeout: string, withDead: boolean) => `---
apiVersion: tollgate.dev/v1alpha1
kind: ExtensionChain
metadata: { name: corp }
spec:
  extensions:
${withDead ? `    - { name: dead, address: "${dead}", supportedEvents: [RequestHeaders, RequestBody], timeout: 5s, failOpen: true }\n` : ''}    - { name: pdp, address: "${pdp}", supportedEvents: [RequestHeaders, RequestBody], timeout: ${timeout} }
`;

const reloadWith = async (timeout: string, withDead: boolean) => {
  writeFileSync(join(dir, 'config.yaml'), poolAndModelYaml(stub.url) + chain(timeout, withDead));
  assert.equal(await gw.reload(), true);
};

const metrics = async () => (await (await request(`${gw.adminUrl}/metrics`)).body.text()).split('\n').filter((l) => l.startsWith('tollgate_extproc_client_'));
const channelsTo = async (address: string) => (await openChannels()).filter((target) => target === address).length;

before(async () => {
  stub = await startStub((r) => json(r.res, 200, { choices: [{ index: 0, message: { role: 'assistant', content: 'hi' } }] }));
  extension = await startGateway({ configPaths: [], manifests: poolAndModel([stub.url]), ...LOOPBACK, extprocPort: 0, extproc: { roles: ['pdp'] } });
  pdp = `127.0.0.1:${extension.extprocPort}`;
  dead = `127.0.0.1:${await freePort()}`;
  dir = mkdtempSync(join(tmpdir(), 'tollgate-retire-chain-'));
  writeFileSync(join(dir, 'config.yaml'), poolAndModelYaml(stub.url) + chain('5s', true));
  gw = await startGateway({ configPaths: [dir], ...LOOPBACK, extprocPort: 0 });
});

after(async () => {
  await gw.close();
  await extension.close();
  await stub.close();
  rmSync(dir, { recursive: true, force: true });
});

test('an ext_proc stream begun before the reload calls the old chain, whose clients close once it is over; a dropped extension\'s series go', async () => {
  const answer = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', body: CHAT });
  assert.equal(answer.statusCode, 200, await answer.body.text());
  const deadSeries = 'tollgate_extproc_client_failures_total{extension="corp/dead",reason="unavailable"}';
  assert.ok((await metrics()).some((l) => l.startsWith(deadSeries)));

  const client = new ExtprocClient({ address: `127.0.0.1:${gw.extprocPort}` });
  const call = client.open(5000);
  await call.send({ request_headers: { headers: headerMap([[':method', 'POST'], [':path', '/v1/chat/completions'], [':authority', 'gw'], ['content-type', 'application/json']]) } });
  await reloadWith('4s', true);
  assert.equal(await channelsTo(dead), 2, 'the old chain is open while the stream begun with it is in flight, beside the new one');
  const decided = await call.send({ request_body: { body: Buffer.from(CHAT), end_of_stream: true } });
  assert.equal(decided.immediate_response, undefined, decided.immediate_response?.body?.toString());
  await call.send({ response_headers: { headers: headerMap([[':status', '200'], ['content-type', 'application/json']]) } });
  await call.send({ response_body: { body: Buffer.from('{}'), end_of_stream: true } });
  call.end();
  client.close();
  await waitFor(async () => (await channelsTo(dead)) === 1, 20_000, "the old chain's clients closed");
  assert.equal(await channelsTo(pdp), 1, "only the new chain's client is left");
  assert.ok((await metrics()).some((l) => l.startsWith(deadSeries)), 'an extension the new chain has too keeps its series');

  // With nothing in flight, at once.
  await reloadWith('4s', false);
  await waitFor(async () => (await channelsTo(dead)) === 0, 20_000, "the old chain's clients closed");
  const after = await metrics();
  assert.ok(!after.some((l) => l.includes('corp/dead')), `the dropped extension's series are gone:\n${after.join('\n')}`);
});

test('a data-plane request whose body comes after the reload calls the chain it began with, which closes once it is answered', async () => {
  const req = httpRequest(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } });
  req.write(CHAT.slice(0, 10));
  await waitFor(() => gw.dataPlane.inflight === 1, 5000, 'the request at the gateway');
  await reloadWith('3s', false);
  assert.equal(await channelsTo(pdp), 2, 'the old chain is open while the request begun with it is in flight');
  req.end(CHAT.slice(10));
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  res.resume();
  assert.equal(res.statusCode, 200);
  await waitFor(async () => (await channelsTo(pdp)) === 1, 20_000, "the old chain's client closed");
});
