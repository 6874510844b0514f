// ext_proc exchanges whose answer's end tollgate does not see. Envoy ends every stream alike, done or not: a
// half-close and a reset at once (a half-close alone only with its opt-in graceful close). Untold Envoy's response
// body mode, that end cannot be told from a hang-up: the answer went on unseen (response events skipped, or
// response_body_mode NONE) and the token reservation stands. Before, the reset refunded it — token quotas counted
// nothing for such a listener — and a body-NONE success was recorded as a hang-up. Told the mode, Envoy sends every
// answer's body, so a stream that ends before it was cut: reconciled to the prompt, as on HTTP (before, it was free
// or charged the whole reservation).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { ExtprocClient, type ExtprocCall } from '../src/extproc/client.js';
import { startExtprocServer, type ExtprocServer } from '../src/extproc/server.js';
import { silentLogger } from '../src/lib/logger.js';
import { createApp, quotaReport, untilKeyKnown, type IssuedApp } from './helpers/apim-admin.js';
import { closeEnvoyClients, ENVOY_ENDS, headerMap, sendChatRequest } from './helpers/extproc-envoy.js';
import { apiKeyManifests, manifest } from './helpers/manifests.js';
import { scrape, waitFor } from '../src/sim/testing.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const MAX_TOKENS = 500;
const chat = (stream: boolean) => JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello there' }], max_tokens: MAX_TOKENS, stream });

let stub: Stub;
let gw: Gateway;
let app: IssuedApp;
/** The gateway's own listener, untold Envoy's response body mode. */
let untold: ExtprocClient;
/** A listener told `responseBodyMode: 'STREAMED'`, on the same data plane. */
let toldServer: ExtprocServer;
let told: ExtprocClient;

before(async () => {
  stub = await startStub();
  gw = await startGateway({
    configPaths: [],
    manifests: [
      ...apiKeyManifests('gold', { llmOperations: { models: ['m'], llmTokenQuota: { limit: 1_000_000, interval: 1, timeUnit: 'hour', countOn: 'total' } } }),
      manifest('InferencePool', 'one', { endpoints: [stub.url] }),
      manifest('InferenceModel', 'm', { modelName: 'm', poolRef: { name: 'one' } }),
    ],
    ...LOOPBACK,
    extprocPort: 0,
  });
  app = await createApp(gw.adminUrl, ['gold'], 'unseen');
  await untilKeyKnown(gw.url, app.key);
  untold = new ExtprocClient({ address: `127.0.0.1:${gw.extprocPort}` });
  toldServer = await startExtprocServer({ dataPlane: gw.dataPlane, logger: silentLogger }, { port: 0, host: '127.0.0.1', responseBodyMode: 'STREAMED' });
  told = new ExtprocClient({ address: `127.0.0.1:${toldServer.port}` });
});

after(async () => {
  untold?.close();
  told?.close();
  closeEnvoyClients();
  await toldServer?.close(100);
  await gw?.close();
  await stub?.close();
});

const used = async () => (await quotaReport(gw.url, app.key)).body.products[0].operationSets[0].llmTokenQuota.used as number;

/** tollgate_requests_total by status for model m, and inference_objective_request_error_total for client_closed. */
async function counts(): Promise<{ byStatus: Record<string, number>; hangUps: number; requests: number }> {
  const byStatus: Record<string, number> = {};
  let hangUps = 0;
  let requests = 0;
  for (const m of await scrape(gw.adminUrl)) {
    // The quota reports this test reads count too (model "").
    if (m.name === 'tollgate_requests_total' && m.labels.model === 'm') {
      byStatus[m.labels.status] = (byStatus[m.labels.status] ?? 0) + m.value;
      requests += m.value;
    } else if (m.name === 'inference_objective_request_error_total' && m.labels.error_code === 'client_closed') hangUps += m.value;
  }
  return { byStatus, hangUps, requests };
}

interface Outcome {
  reserved: number;
  counted: number;
  /** The status it was counted under, and whether it was a hang-up. */
  status: string;
  hangUp: boolean;
}

/**
 * The request's headers and body as Envoy sends them (tollgate decides and picks), then `answer`'s response events,
 * then `end`; what it reserved, what it came to, and how it was counted once accounted.
 */
async function exchange(client: ExtprocClient, stream: boolean, answer: (call: ExtprocCall) => Promise<unknown>, end: (call: ExtprocCall) => void): Promise<Outcome> {
  const start = await used();
  const was = await counts();
  const call = client.open(10_000);
  const decided = await sendChatRequest(call, chat(stream), app.key);
  assert.equal(decided.immediate_response, undefined, decided.immediate_response?.body?.toString());
  const reserved = (await used()) - start;
  await answer(call);
  end(call);
  let now = was;
  await waitFor(async () => (now = await counts()).requests === was.requests + 1, 5000, 'the request accounted');
  const status = Object.keys(now.byStatus).find((s) => now.byStatus[s] !== (was.byStatus[s] ?? 0))!;
  return { reserved, counted: (await used()) - start, status, hangUp: now.hangUps === was.hangUps + 1 };
}

const nothing = async () => {};
const head = (contentType: string) => (call: ExtprocCall) => call.send({ response_headers: { headers: headerMap([[':status', '200'], ['content-type', contentType]]), end_of_stream: false } });
const SSE_START = 'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"to';

for (const [how, end] of ENVOY_ENDS) {
  describe(`Envoy ends the stream with ${how}`, () => {
    test('untold, after no response event (response events skipped): the answer is unseen, its reservation kept', async () => {
      const r = await exchange(untold, false, nothing, end);
      assert.ok(r.reserved > MAX_TOKENS, `reserved ${r.reserved}`);
      assert.deepEqual(r, { reserved: r.reserved, counted: r.reserved, status: '0', hangUp: false });
    });

    test('untold, after response trailers alone: the reservation kept', async () => {
      const r = await exchange(untold, false, (call) => call.send({ response_trailers: { trailers: { headers: [] } } }), end);
      assert.deepEqual(r, { reserved: r.reserved, counted: r.reserved, status: '0', hangUp: false });
    });

    test("untold, after the answer's 200 head alone (response_body_mode NONE): a 200, no hang-up, its reservation kept", async () => {
      const r = await exchange(untold, false, head('application/json'), end);
      assert.deepEqual(r, { reserved: r.reserved, counted: r.reserved, status: '200', hangUp: false });
    });

    test('untold, after a piece of the body without its end: a hang-up mid-answer (Envoy sends the body), reconciled to the prompt', async () => {
      const r = await exchange(
        untold,
        true,
        async (call) => {
          await head('text/event-stream')(call);
          await call.send({ response_body: { body: Buffer.from(SSE_START), end_of_stream: false } });
        },
        end,
      );
      assert.deepEqual(r, { reserved: r.reserved, counted: r.reserved - MAX_TOKENS, status: '200', hangUp: true });
    });

    test('told, after no response event: a hang-up before the answer, reconciled to the prompt alone', async () => {
      const r = await exchange(told, false, nothing, end);
      assert.deepEqual(r, { reserved: r.reserved, counted: r.reserved - MAX_TOKENS, status: '499', hangUp: true });
    });

    test("told, after the answer's 200 head alone: a hang-up before any of the body, reconciled to the prompt alone", async () => {
      const r = await exchange(told, false, head('application/json'), end);
      assert.deepEqual(r, { reserved: r.reserved, counted: r.reserved - MAX_TOKENS, status: '200', hangUp: true });
    });

    test('told, after the answer ended: reconciled to its usage, no hang-up', async () => {
      const answer = JSON.stringify({ id: 'c', object: 'chat.completion', choices: [], usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 } });
      const r = await exchange(
        told,
        false,
        async (call) => {
          await head('application/json')(call);
          await call.send({ response_body: { body: Buffer.from(answer), end_of_stream: true } });
        },
        end,
      );
      assert.deepEqual(r, { reserved: r.reserved, counted: 10, status: '200', hangUp: false });
    });
  });
}

test('untold, a cancel after the pick (a client gone, or Envoy done) keeps the reservation, as Envoy ending the stream does', async () => {
  const r = await exchange(untold, false, nothing, (call) => call.cancel());
  assert.deepEqual(r, { reserved: r.reserved, counted: r.reserved, status: '0', hangUp: false });
});
