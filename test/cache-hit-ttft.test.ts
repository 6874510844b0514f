// A cache hit is an answer the client reads, so it has a time to first token like a model server's answer: in the TTFT
// histogram, the usage record and the access log. It had none, so with a warm cache the TTFT figures left out the
// fastest answers that the request rate and end-to-end latency count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startGateway } from '../src/gateway/gateway.js';
import { AnalyticsRecords } from '../src/store/index.js';
import { startStub } from './helpers/stub-upstream.js';
import { closeEnvoyClients, envoyExchange } from './helpers/extproc-envoy.js';
import { collectingLogger } from './helpers/log-lines.js';
import { manifest, poolAndModel } from './helpers/manifests.js';
import { untilEndpoints } from './helpers/pool-ready.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

test('a cache hit has a TTFT in the metrics, its usage record and the access log', async () => {
  const upstream = await startStub();
  const { logger, lines } = collectingLogger<{ msg: string; requestId?: string; ttftMs?: number }>();
  const gw = await startGateway({
    configPaths: [],
    manifests: [
      ...poolAndModel([upstream.url]),
      manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: false, targetRef: { name: 'tollgate', kind: 'Gateway' } }),
      manifest('ResponseCache', 'cache', { expirySettings: { timeoutInSeconds: 60 }, scope: 'global' }),
      manifest('ApimTemplate', 'caching', { templates: [{ policies: [{ kind: 'ResponseCache', name: 'cache' }] }] }),
    ],
    ...LOOPBACK,
    logger,
    extprocPort: 0,
    extproc: { requestBodyMode: 'BUFFERED' },
  });
  try {
    await untilEndpoints(gw);
    const ids = ['ttft-miss', 'ttft-hit-1', 'ttft-hit-2'];
    for (const [i, id] of ids.entries()) {
      const r = await request(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': id },
        body: JSON.stringify({ model: 'm', temperature: 0, messages: [{ role: 'user', content: 'cache me' }] }),
      });
      await r.body.dump();
      assert.deepEqual([r.statusCode, r.headers['x-cache']], [200, i === 0 ? 'MISS' : 'HIT']);
    }
    // Over ext_proc a hit is Envoy's local reply, timed the same way.
    const extprocIds = ['ttft-extproc-miss', 'ttft-extproc-hit'];
    for (const [i, id] of extprocIds.entries()) {
      const body = JSON.stringify({ model: 'm', temperature: 0, messages: [{ role: 'user', content: 'cache me over ext_proc' }] });
      const r = await envoyExchange(`127.0.0.1:${gw.extprocPort}`, { path: '/v1/chat/completions', headers: { 'content-type': 'application/json', 'x-request-id': id }, body, upstream: upstream.url, responseBodyMode: 'BUFFERED' });
      assert.deepEqual([r.status, r.headers['x-cache']], [200, i === 0 ? 'MISS' : 'HIT']);
    }
    ids.push(...extprocIds);
    assert.equal(upstream.requests.length, 2);

    const text = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    const value = (series: string) => Number(text.split('\n').find((l) => l.startsWith(`${series} `))?.split(' ')[1]);
    assert.equal(value('inference_objective_request_ttft_seconds_count{model_name="m",target_model_name="m"}'), 5);

    await gw.analytics!.flush();
    const rows = await new AnalyticsRecords(gw.apim!.db).kysely.selectFrom('analytics_records').select(['request_id', 'ttft_ms', 'latency_ms']).where('request_id', 'in', ids).execute();
    assert.equal(rows.length, 5);
    for (const row of rows) {
      assert.ok(row.ttft_ms !== null && Number(row.ttft_ms) <= Number(row.latency_ms), `${row.request_id}: ttft ${row.ttft_ms}, latency ${row.latency_ms}`);
    }

    for (const id of ids) assert.equal(typeof lines.find((l) => l.msg === 'request' && l.requestId === id)?.ttftMs, 'number', `${id} logs its TTFT`);
  } finally {
    closeEnvoyClients();
    await gw.close();
    await upstream.close();
  }
});
