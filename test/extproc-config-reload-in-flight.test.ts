// Over ext_proc too, a request finishes with the configuration and hooks it started with (its request headers),
// whatever a reload or an API-management change installs before its answer is over (config-reload-in-flight.test.ts
// for the data plane): its response flow came from the hooks installed by then, so a new policy chain that knew
// nothing of the request ran on its answer (or failed it), and a configuration installed while its body was coming
// decided it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../src/config/load.js';
import { ExtprocClient } from '../src/extproc/client.js';
import type { ProcessingResponse } from '../src/extproc/messages.js';
import { startExtprocServer, type ExtprocServer } from '../src/extproc/server.js';
import type { DataPlane } from '../src/gateway/data-plane.js';
import type { GatewayHooks } from '../src/gateway/hooks.js';
import { silentLogger } from '../src/lib/logger.js';
import { RoundRobinPicker } from '../src/scheduler/round-robin.js';
import { waitFor } from '../src/sim/testing.js';
import { bareDataPlane } from './helpers/bare-data-plane.js';
import { headerMap } from './helpers/extproc-envoy.js';
import { poolAndModel } from './helpers/manifests.js';

const ENDPOINT = 'http://10.0.0.1:8000';
const CHAT = Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }));
const ANSWER = Buffer.from(JSON.stringify({ id: 'c1', object: 'chat.completion', choices: [], usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 } }));
const REQUEST_HEADERS = headerMap([[':method', 'POST'], [':path', '/v1/chat/completions'], [':authority', 'gw'], ['content-type', 'application/json']]);

let completed: string[];
let tagging: GatewayHooks;
let dp: DataPlane;
let server: ExtprocServer;
let client: ExtprocClient;

before(async () => {
  completed = [];
  tagging = {
    respond: () => ({ headers: (_status, headers) => void (headers['x-tagged'] = 'yes') }),
    complete: () => void completed.push('tagging'),
  };
  dp = bareDataPlane(loadConfig([], poolAndModel([ENDPOINT])), new RoundRobinPicker(), tagging);
  server = await startExtprocServer({ dataPlane: dp, logger: silentLogger }, { port: 0, host: '127.0.0.1' });
  client = new ExtprocClient({ address: `127.0.0.1:${server.port}` });
});

after(async () => {
  client?.close();
  await server?.close(100);
});

const header = (a: ProcessingResponse, name: string) =>
  a.response_headers?.response?.header_mutation?.set_headers?.find((h) => h.header.key === name)?.header.raw_value?.toString();

test("hooks installed between a request's decision and its answer: the answer runs the response flow the request started with", async () => {
  const call = client.open(5000);
  await call.send({ request_headers: { headers: REQUEST_HEADERS } });
  const decided = await call.send({ request_body: { body: CHAT, end_of_stream: true } });
  assert.equal(decided.immediate_response, undefined, JSON.stringify(decided.immediate_response));
  // A policy chain of another request's world (an ExtensionChain whose stream never saw this one) fails its answers.
  dp.hooks = {
    respond: () => {
      throw new Error('a response flow for a request these hooks never admitted');
    },
    complete: () => void completed.push('new'),
  };
  const answer = await call.send({ response_headers: { headers: headerMap([[':status', '200'], ['content-type', 'application/json']]) } });
  assert.equal(answer.immediate_response, undefined, answer.immediate_response?.body?.toString());
  assert.equal(header(answer, 'x-tagged'), 'yes');
  await call.send({ response_body: { body: ANSWER, end_of_stream: true } });
  call.end();
  await waitFor(() => completed.length === 1, 2000, 'the request completed');
  assert.deepEqual(completed, ['tagging'], 'the hooks it started with were told');
  dp.hooks = tagging;
});

test("a configuration installed while a request's body is coming: the request is decided by the one its headers came under", async () => {
  const before = dp.config;
  const call = client.open(5000);
  await call.send({ request_headers: { headers: REQUEST_HEADERS } });
  dp.config = loadConfig([], poolAndModel([ENDPOINT], 'other'));
  try {
    const decided = await call.send({ request_body: { body: CHAT, end_of_stream: true } });
    assert.equal(decided.immediate_response, undefined, decided.immediate_response?.body?.toString());
    const destination = decided.request_body?.response?.header_mutation?.set_headers?.find((h) => h.header.key === 'x-gateway-destination-endpoint');
    assert.equal(destination?.header.raw_value?.toString(), '10.0.0.1:8000');
    await call.send({ response_headers: { headers: headerMap([[':status', '200'], ['content-type', 'application/json']]), end_of_stream: true } });
    call.end();

    // A request that starts after the change sees it.
    const next = client.open(5000);
    await next.send({ request_headers: { headers: REQUEST_HEADERS } });
    const refused = await next.send({ request_body: { body: CHAT, end_of_stream: true } });
    next.end();
    assert.equal(refused.immediate_response?.status.code, 404);
  } finally {
    dp.config = before;
  }
});
