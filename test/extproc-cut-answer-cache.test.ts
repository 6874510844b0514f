// ext_proc: an answer whose body Envoy ends by closing the stream, without end_of_stream or trailers, was cut short
// (the upstream reset mid-body): a ResponseCache filling must not store what arrived as though it were the answer.
// Whichever way Envoy closes it: its own half-close and reset, or a half-close alone (its opt-in graceful close).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { ExtprocClient } from '../src/extproc/client.js';
import { chatAnswer } from '../src/policy/caching/testing.js';
import { createApp, untilKeyKnown, type IssuedApp } from './helpers/apim-admin.js';
import { ENVOY_ENDS, headerMap, sendChatRequest } from './helpers/extproc-envoy.js';
import { apiKeyManifests, manifest } from './helpers/manifests.js';
import { sleep, startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

// Cacheable: temperature 0. One prompt per test, so that each fills its own entry.
const body = (content: string) => JSON.stringify({ model: 'm', messages: [{ role: 'user', content }], temperature: 0 });

let stub: Stub;
let gw: Gateway;
let app: IssuedApp;
let client: ExtprocClient;

before(async () => {
  stub = await startStub();
  gw = await startGateway({
    configPaths: [],
    manifests: [
      ...apiKeyManifests('gold'),
      manifest('ResponseCache', 'cache', { expirySettings: { timeoutInSeconds: 60 }, scope: 'app' }),
      manifest('ApimTemplate', 'caching', { templates: [{ policies: [{ kind: 'ResponseCache', name: 'cache' }] }] }),
      manifest('InferencePool', 'one', { endpoints: [stub.url] }),
      manifest('InferenceModel', 'm', { modelName: 'm', poolRef: { name: 'one' } }),
    ],
    ...LOOPBACK,
    extprocPort: 0,
  });
  app = await createApp(gw.adminUrl, ['gold'], 'cut');
  await untilKeyKnown(gw.url, app.key);
  client = new ExtprocClient({ address: `127.0.0.1:${gw.extprocPort}` });
});

after(async () => {
  client?.close();
  await gw?.close();
  await stub?.close();
});

for (const [how, close] of ENVOY_ENDS) {
  test(`an answer Envoy ends by closing the stream (${how}) mid-body is not cached; one that ends is`, async () => {
    const BODY = body(`cut me short, ${how}`);
    const answer = Buffer.from(JSON.stringify(chatAnswer('a whole-looking answer', 'm')));
    const respond = async (end: boolean) => {
      const call = client.open(10_000);
      const decided = await sendChatRequest(call, BODY, app.key);
      assert.equal(decided.immediate_response, undefined, 'not answered from the cache');
      await call.send({ response_headers: { headers: headerMap([[':status', '200'], ['content-type', 'application/json']]), end_of_stream: false } });
      await call.send({ response_body: { body: answer, end_of_stream: end } });
      close(call);
    };
    const hit = async () => {
      const call = client.open(10_000);
      const decided = await sendChatRequest(call, BODY, app.key);
      call.cancel();
      return decided.immediate_response !== undefined;
    };
    await respond(false);
    await sleep(100);
    assert.equal(await hit(), false, 'what arrived before the stream closed was stored as the answer');
    await respond(true);
    for (let i = 0; i < 50 && !(await hit()); i++) await sleep(20);
    assert.equal(await hit(), true, 'a complete answer is cached (the test can tell)');
  });
}
