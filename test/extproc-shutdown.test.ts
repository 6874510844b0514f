// At shutdown, ext_proc streams get shutdownGracePeriod as the data plane's requests do: the picker (its queue, its
// scrapes) runs until they are over, so a request queued at SIGTERM is picked once there is room, and a stream whose
// body comes during the grace is picked from fresh metrics. They were refused (shutting_down, then
// no_healthy_endpoints once the metrics went stale) as soon as the idle built-in listener had drained.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExtprocClient } from '../src/extproc/client.js';
import type { ProcessingResponse } from '../src/extproc/messages.js';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { waitFor } from '../src/sim/testing.js';
import { headerMap } from './helpers/extproc-envoy.js';
import { poolAndModel, settings } from './helpers/manifests.js';
import { IDLE_METRICS, queuedMetrics, sleep, startStub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const BODY = Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello' }], max_tokens: 4 }));
const HEADERS = headerMap([[':method', 'POST'], [':path', '/v1/chat/completions'], [':authority', 'gw'], [':scheme', 'http'], ['content-type', 'application/json'], ['content-length', String(BODY.length)]]);

const outcome = (a: ProcessingResponse | Error) =>
  a instanceof Error ? a.message : a.immediate_response ? `immediate ${a.immediate_response.status?.code} ${a.immediate_response.body?.toString()}` : 'picked';

/** A gateway with an endpoint-picker ext_proc listener before `stubUrl`, `server`/`scheduler` settings as given. */
function eppGateway(stubUrl: string, spec: Record<string, unknown>): Promise<Gateway> {
  return startGateway({
    configPaths: [],
    manifests: [...poolAndModel([stubUrl]), settings({ ...spec, logging: { level: 'silent' } })],
    ...LOOPBACK,
    extprocPort: 0,
    extproc: { roles: ['epp'], requestBodyMode: 'BUFFERED' },
  });
}

/** A request sent on a new stream of `client` into the saturated pool's queue: its outcome once the body is judged. */
async function queuedRequest(gw: Gateway, client: ExtprocClient): Promise<{ call: ReturnType<ExtprocClient['open']>; outcome: Promise<string> }> {
  const call = client.open(10_000);
  await call.send({ request_headers: { headers: HEADERS, end_of_stream: false } });
  const answer = call.send({ request_body: { body: BODY, end_of_stream: true } }).then(outcome, outcome);
  // A loaded host (CI beside other suites) can take seconds to open the stream and judge the body.
  await waitFor(() => gw.picker.view('pool')!.queueLength === 1, 15_000, 'the request queued');
  return { call, outcome: answer };
}

test('ext_proc streams open at shutdown are picked within the grace period, from fresh metrics', async () => {
  const stub = await startStub();
  // staleAfter 1 s: at 300 ms a scrape late on a loaded host left the endpoint stale, and the request was refused
  // rather than queued (the test's CI failure of 2026-11-29).
  const gw = await eppGateway(stub.url, { server: { shutdownGracePeriod: '5s' }, scheduler: { scrapeInterval: '50ms', staleAfter: '1s' } });
  const client = new ExtprocClient({ address: `127.0.0.1:${gw.extprocPort}` });
  try {
    await waitFor(() => gw.picker.ready().every((p) => p.reachable), 5000, 'the endpoint scraped');
    stub.metrics = queuedMetrics(10);
    await waitFor(() => gw.picker.view('pool')!.saturated, 5000, 'the pool saturated');
    const { call: queuedCall, outcome: queued } = await queuedRequest(gw, client);
    const lateCall = client.open(10_000);
    await lateCall.send({ request_headers: { headers: HEADERS, end_of_stream: false } });

    const closed = gw.close();
    await sleep(300);
    stub.metrics = IDLE_METRICS;
    assert.equal(await queued, 'picked');
    // Past staleAfter: only scrapes that went on keep the endpoint eligible.
    await sleep(1200);
    assert.equal(await lateCall.send({ request_body: { body: BODY, end_of_stream: true } }).then(outcome, outcome), 'picked');
    for (const c of [queuedCall, lateCall]) c.end();
    await closed;
  } finally {
    client.close();
    await gw.close();
    await stub.close();
  }
});

test('an ext_proc request still queued when the grace ends gets 503 shutting_down, not a cut stream', async () => {
  const stub = await startStub();
  stub.metrics = queuedMetrics(10);
  const gw = await eppGateway(stub.url, { server: { shutdownGracePeriod: '300ms' } });
  const client = new ExtprocClient({ address: `127.0.0.1:${gw.extprocPort}` });
  try {
    await waitFor(() => gw.picker.view('pool')?.saturated === true, 5000, 'the pool saturated');
    const { outcome: queued } = await queuedRequest(gw, client);
    await gw.close();
    assert.match(await queued, /^immediate 503 .*"shutting_down"/);
  } finally {
    client.close();
    await gw.close();
    await stub.close();
  }
});
