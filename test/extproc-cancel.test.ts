// An Envoy whose downstream client goes away ends the ext_proc stream after tollgate has picked an endpoint, with a
// reset (as it ends every stream: a half-close, then the reset). Told Envoy's response body mode, so that the answer
// was due, that is a client hang-up (client_closed, 499 in tollgate_requests_total), as on the data plane; before,
// about half were taken for a normal end with the answer unseen (status "0", no error code), depending on the
// event-loop turn the reset's close came in. (Untold, every such end is the answer unseen:
// extproc-unseen-answer.test.ts.) The gateway runs in a process of its own, as in production: in one process the
// client's and server's events interleave differently and the race did not show.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ExtprocClient } from '../src/extproc/client.js';
import { startExtprocChild, type ExtprocChild } from './helpers/extproc-child.js';
import { closeEnvoyClients, envoyEnd, headerMap } from './helpers/extproc-envoy.js';
import { scrape, waitFor } from '../src/sim/testing.js';
import { sleep, startStub, type Stub } from './helpers/stub-upstream.js';

let stub: Stub;
let gw: ExtprocChild;
let client: ExtprocClient;

before(async () => {
  stub = await startStub();
  gw = await startExtprocChild({
    manifests: [
      ['InferencePool', 'one', { endpoints: [stub.url] }],
      ['InferenceModel', 'm', { modelName: 'm', poolRef: { name: 'one' } }],
    ],
    responseBodyMode: 'STREAMED',
  });
  client = new ExtprocClient({ address: gw.extproc });
  // Started is not scraped: a loaded host can miss the first scrape's deadline, and the first pick then found no
  // endpoint (an immediate 503 instead of a pick).
  await waitFor(
    async () => {
      const r = await fetch(`${gw.adminUrl}/readyz`);
      await r.arrayBuffer();
      return r.status === 200;
    },
    10_000,
    'the pool to be ready',
    20,
  );
});

after(async () => {
  client?.close();
  closeEnvoyClients();
  await gw?.stop();
  await stub?.close();
});

/** tollgate_requests_total by status, summed over its other labels. */
async function requestsByStatus(): Promise<Map<string, number>> {
  const by = new Map<string, number>();
  for (const m of await scrape(gw.adminUrl)) {
    if (m.name === 'tollgate_requests_total') by.set(m.labels.status, (by.get(m.labels.status) ?? 0) + m.value);
  }
  return by;
}

test('streams reset after the pick (alone, or after a half-close as Envoy ends them) are counted as client hang-ups, each one', async () => {
  const cancels = 20;
  const body = Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }));
  for (let i = 0; i < cancels; i++) {
    const call = client.open(10_000);
    const headers = headerMap([[':method', 'POST'], [':path', '/v1/chat/completions'], [':authority', 'gw'], [':scheme', 'http'], ['content-type', 'application/json']]);
    await call.send({ request_headers: { headers, end_of_stream: false } });
    const picked = await call.send({ request_body: { body, end_of_stream: true } });
    assert.ok(picked.request_body, JSON.stringify(picked).slice(0, 200));
    if (i % 2 === 0) call.cancel();
    else envoyEnd(call);
  }
  let by = await requestsByStatus();
  for (let i = 0; i < 100 && (by.get('499') ?? 0) + (by.get('0') ?? 0) < cancels; i++) {
    await sleep(20);
    by = await requestsByStatus();
  }
  assert.deepEqual(Object.fromEntries(by), { '499': cancels });
});
