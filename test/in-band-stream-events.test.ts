// What a 200 stream's events say about it, read on the data plane and under ext_proc: a model server's in-band error
// event (vLLM's `{"error":{...}}`, a Responses `error` or `response.failed`) makes the request a fault in the access
// log, the usage record and the error metrics, where it counted as a success; and a Responses stream's first token is
// its first delta, not the `response.created` it sends before queueing and prefill.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startGateway } from '../src/gateway/gateway.js';
import { until } from './helpers/apim-admin.js';
import { startStub, type StubRequest } from './helpers/stub-upstream.js';
import { closeEnvoyClients, envoyExchange } from './helpers/extproc-envoy.js';
import { collectingLogger } from './helpers/log-lines.js';
import { poolAndModel } from './helpers/manifests.js';
import { untilEndpoints } from './helpers/pool-ready.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const respEvent = (type: string, more: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...more })}\n\n`;
const response = (status: string, more: object = {}) => ({ response: { id: 'resp_1', object: 'response', status, output: [], usage: null, error: null, ...more } });
const chunk = (content: string) => `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;

/** The streams a model server ends with an error event, after some text, under status 200. */
const FAILED: Record<string, string> = {
  vllm: `${chunk('Hel')}data: {"error":{"object":"error","message":"engine died","type":"InternalServerError","code":500}}\n\ndata: [DONE]\n\n`,
  'responses-error': respEvent('response.created', response('in_progress')) + respEvent('error', { code: 'server_error', message: 'engine died', param: null }),
  'responses-failed': respEvent('response.created', response('in_progress')) + respEvent('response.failed', response('failed', { error: { code: 'server_error', message: 'engine died' } })),
};
/** How long the Responses stream is queued and prefilled between response.created and its first delta. */
const PREFILL_MS = 300;

async function upstream(r: StubRequest): Promise<void> {
  const prompt = (r.body as { input?: string }).input ?? '';
  r.res.writeHead(200, { 'content-type': 'text/event-stream' });
  if (prompt in FAILED) return void r.res.end(FAILED[prompt]);
  r.res.write(respEvent('response.created', response('in_progress')) + respEvent('response.in_progress', response('in_progress')));
  await new Promise((resolve) => setTimeout(resolve, PREFILL_MS));
  r.res.write(respEvent('response.output_text.delta', { item_id: 'm1', output_index: 0, content_index: 0, delta: 'hi' }));
  r.res.end(respEvent('response.completed', response('completed', { usage: { input_tokens: 3, output_tokens: 1, total_tokens: 4 } })));
}

test('an in-band error event is a fault (data plane and ext_proc); a Responses stream\'s TTFT is at its first delta', async () => {
  const stub = await startStub(upstream);
  const { logger, lines } = collectingLogger<{ msg: string; requestId?: string; status?: number; errorCode?: string; ttftMs?: number }>();
  const gw = await startGateway({ configPaths: [], manifests: poolAndModel([stub.url]), ...LOOPBACK, logger, extprocPort: 0, extproc: { requestBodyMode: 'BUFFERED' } });
  const logged = (id: string) => lines.find((l) => l.msg === 'request' && l.requestId === id);
  try {
    await untilEndpoints(gw);
    for (const kind of Object.keys(FAILED)) {
      const body = JSON.stringify({ model: 'm', stream: true, input: kind });
      const r = await request(`${gw.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': `http-${kind}` }, body });
      assert.equal(r.statusCode, 200);
      assert.equal(await r.body.text(), FAILED[kind], 'the client gets the stream as it came');
      const viaEnvoy = await envoyExchange(`127.0.0.1:${gw.extprocPort}`, { path: '/v1/responses', headers: { 'content-type': 'application/json', 'x-request-id': `extproc-${kind}` }, body, upstream: stub.url, responseBodyMode: 'STREAMED' });
      assert.equal(viaEnvoy.status, 200);
    }
    // Before: errorCode undefined, a success in the records and metrics.
    for (const id of Object.keys(FAILED).flatMap((kind) => [`http-${kind}`, `extproc-${kind}`])) {
      // Under ext_proc the exchange is logged once Envoy's stream closes, after the answer is out.
      const line = await until(async () => logged(id), (l) => l !== undefined, 5_000, `${id} logged`);
      assert.deepEqual([line!.status, line!.errorCode], [200, 'upstream_error'], id);
    }

    const r = await request(`${gw.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'ttft' }, body: JSON.stringify({ model: 'm', stream: true, input: 'hi' }) });
    assert.match(await r.body.text(), /output_text\.delta/);
    // A lower bound only: the first delta cannot come before the upstream sends it. Before: a few ms, at response.created.
    const { ttftMs, errorCode } = logged('ttft')!;
    assert.ok(ttftMs! >= PREFILL_MS - 10, `TTFT ${ttftMs} ms, the first delta sent ${PREFILL_MS} ms after response.created`);
    assert.equal(errorCode, undefined);
  } finally {
    closeEnvoyClients();
    await gw.close();
    await stub.close();
  }
});
