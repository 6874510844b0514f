// At shutdown, requests still in the flow-control queue when the grace period ends were never sent to a model server:
// they get 503 shutting_down (safe to retry elsewhere) before the connections close, not a reset connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway } from '../src/gateway/gateway.js';
import { waitFor } from '../src/sim/testing.js';
import { call, codeOf } from './helpers/apim-admin.js';
import { poolAndModel, settings } from './helpers/manifests.js';
import { queuedMetrics, startStub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

test('requests still queued when the shutdown grace ends get 503 shutting_down; one in flight is cut', async () => {
  // Every inference request is held open: the one in flight outlasts the grace period.
  const stub = await startStub(() => new Promise<void>(() => {}));
  const gw = await startGateway({
    configPaths: [],
    manifests: [...poolAndModel([stub.url]), settings({ server: { shutdownGracePeriod: '300ms' }, logging: { level: 'silent' } })],
    ...LOOPBACK,
  });
  try {
    const chat = (content: string) =>
      call(gw.url, 'POST', '/v1/chat/completions', { model: 'm', messages: [{ role: 'user', content }] }).then(
        (a) => ({ status: a.status, connection: a.headers.connection, code: codeOf(a) }),
        (err: Error & { code?: string }) => ({ error: err.code ?? err.message }),
      );
    const inFlight = chat('held');
    await waitFor(() => stub.requests.length === 1, 5000, 'the request in flight');
    stub.metrics = queuedMetrics(10);
    await waitFor(() => gw.picker.view('pool')!.saturated, 5000, 'the pool saturated');
    const queued = [chat('q0'), chat('q1'), chat('q2')];
    await waitFor(() => gw.picker.view('pool')!.queueLength === 3, 5000, 'the requests queued');
    await gw.close();
    // Before: these three saw the connection reset (UND_ERR_SOCKET), as the one in flight does.
    const refused = { status: 503, connection: 'close', code: 'shutting_down' };
    assert.deepEqual(await Promise.all(queued), [refused, refused, refused]);
    assert.ok('error' in (await inFlight));
    assert.equal(stub.requests.length, 1, 'the queued requests never reached the model server');
  } finally {
    await gw.close();
    await stub.close();
  }
});
