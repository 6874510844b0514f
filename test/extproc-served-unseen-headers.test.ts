// ext_proc with Envoy's response headers skipped (response_header_mode SKIP) after it fell back to the second
// endpoint of the destination: the endpoint that served, which Envoy reports in the envoy.lb metadata of whichever
// response event comes first, is where the request counts, and the first is released as failed. It used to be read
// from response headers alone, so the request counted on the endpoint that failed, released as if it had answered.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../src/config/load.js';
import type { RequestContext } from '../src/gateway/context.js';
import { ExtprocClient } from '../src/extproc/client.js';
import type { ProcessingRequest } from '../src/extproc/messages.js';
import { startExtprocServer, type ExtprocServer } from '../src/extproc/server.js';
import { toStruct } from '../src/extproc/struct.js';
import { silentLogger } from '../src/lib/logger.js';
import type { EndpointPicker, PickRequest } from '../src/scheduler/types.js';
import { waitFor } from '../src/sim/testing.js';
import { bareDataPlane } from './helpers/bare-data-plane.js';
import { headerMap } from './helpers/extproc-envoy.js';
import { poolAndModel } from './helpers/manifests.js';

const FIRST = '10.0.0.1:8000';
const SECOND = '10.0.0.2:8000';
const CHAT = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello' }] });
const ANSWER = Buffer.from(JSON.stringify({ id: 'c1', object: 'chat.completion', choices: [], usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 } }));

/** Picks every endpoint in pool order, and records what the stream releases and falls back to. */
class RecordingPicker implements EndpointPicker {
  releases: [string, boolean][] = [];
  fallbacks: string[] = [];

  pick(req: PickRequest) {
    return {
      endpoints: [...req.pool.endpoints],
      release: (e: { address: string }, o: { reached: boolean }) => void this.releases.push([e.address, o.reached]),
      fallback: (e: { address: string }) => void this.fallbacks.push(e.address),
    };
  }
}

let picker: RecordingPicker;
let completed: RequestContext[];
let server: ExtprocServer;
let client: ExtprocClient;

before(async () => {
  picker = new RecordingPicker();
  completed = [];
  const dataPlane = bareDataPlane(loadConfig([], poolAndModel([`http://${FIRST}`, `http://${SECOND}`])), picker, { complete: (ctx) => void completed.push(ctx) });
  server = await startExtprocServer({ dataPlane, logger: silentLogger }, { port: 0, host: '127.0.0.1' });
  client = new ExtprocClient({ address: `127.0.0.1:${server.port}` });
});

after(async () => {
  client?.close();
  await server?.close(100);
});

const served = { metadata_context: { filter_metadata: { 'envoy.lb': toStruct({ 'x-gateway-destination-endpoint-served': SECOND }) } } };

const CASES: [string, ProcessingRequest[]][] = [
  ['on the body', [{ response_body: { body: ANSWER, end_of_stream: true }, ...served }]],
  ['on each chunk of a streamed body', [{ response_body: { body: ANSWER.subarray(0, 9), end_of_stream: false }, ...served }, { response_body: { body: ANSWER.subarray(9), end_of_stream: true }, ...served }]],
  ['on the trailers (body skipped too)', [{ response_trailers: { trailers: { headers: [] } }, ...served }]],
];

for (const [where, events] of CASES) {
  test(`the served endpoint reported ${where}: counted there, the first released as failed, once`, async () => {
    picker.releases = [];
    picker.fallbacks = [];
    const n = completed.length;
    const call = client.open(5000);
    await call.send({ request_headers: { headers: headerMap([[':method', 'POST'], [':path', '/v1/chat/completions'], [':authority', 'gw'], ['content-type', 'application/json']]) } });
    const decided = await call.send({ request_body: { body: Buffer.from(CHAT), end_of_stream: true } });
    const destination = decided.request_body!.response!.header_mutation!.set_headers!.find((h) => h.header.key === 'x-gateway-destination-endpoint');
    assert.equal(destination?.header.raw_value?.toString(), `${FIRST},${SECOND}`);
    for (const e of events) await call.send(e);
    call.end();
    await waitFor(() => completed.length === n + 1, 5000, 'the request accounted');
    const ctx = completed.at(-1)!;
    assert.equal(ctx.endpoint?.address, SECOND);
    assert.equal(ctx.attempts, 2);
    assert.deepEqual(picker.fallbacks, [SECOND]);
    assert.deepEqual(picker.releases, [
      [FIRST, false],
      [SECOND, true],
    ]);
  });
}
