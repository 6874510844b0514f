// With logging.logPrompts on, the access-log line of a cache hit carries the answer the client read (whole or
// replayed as a stream), as a model server's answer does; it said "" (the model answered nothing).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway } from '../src/gateway/gateway.js';
import { startSimFleet } from '../src/sim/index.js';
import { closeEnvoyClients, envoyExchange } from './helpers/extproc-envoy.js';
import { collectingLogger } from './helpers/log-lines.js';
import { manifest, poolAndModel, settings } from './helpers/manifests.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

test('a cache hit logs the completion it answered with', async () => {
  const fleet = await startSimFleet({ replicas: 1, model: 'm', timeScale: 1000 });
  const { logger, lines } = collectingLogger<{ msg: string; requestId?: string; completion?: string }>();
  const gw = await startGateway({
    configPaths: [],
    manifests: [
      ...poolAndModel(fleet.urls),
      manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: false, targetRef: { name: 'tollgate', kind: 'Gateway' } }),
      manifest('ResponseCache', 'cache', { expirySettings: { timeoutInSeconds: 60 }, scope: 'global' }),
      manifest('ApimTemplate', 'caching', { templates: [{ policies: [{ kind: 'ResponseCache', name: 'cache' }] }] }),
      settings({ logging: { logPrompts: true } }),
    ],
    ...LOOPBACK,
    logger,
    extprocPort: 0,
    extproc: { requestBodyMode: 'BUFFERED' },
  }).catch(async (err: unknown) => {
    await fleet.close();
    throw err;
  });
  try {
    for (const stream of [false, true]) {
      const completions: (string | undefined)[] = [];
      for (let i = 0; i < 2; i++) {
        const id = `logged-${stream}-${i}`;
        const res = await fetch(`${gw.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-request-id': id },
          body: JSON.stringify({ model: 'm', stream, temperature: 0, max_tokens: 6, messages: [{ role: 'user', content: `cache me ${stream}` }] }),
        });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('x-cache'), i === 0 ? 'MISS' : 'HIT');
        await res.text();
        await new Promise((r) => setTimeout(r, 50));
        completions.push(lines.find((l) => l.msg === 'request' && l.requestId === id)?.completion);
      }
      assert.ok(completions[0], `the model server's answer is logged (stream ${stream})`);
      assert.equal(completions[1], completions[0], `the hit logs what it replayed (stream ${stream})`);
    }
    // Over ext_proc, a hit is Envoy's local reply: logged the same.
    const completions: (string | undefined)[] = [];
    for (let i = 0; i < 2; i++) {
      const id = `logged-extproc-${i}`;
      const body = JSON.stringify({ model: 'm', temperature: 0, max_tokens: 6, messages: [{ role: 'user', content: 'cache me over ext_proc' }] });
      const r = await envoyExchange(`127.0.0.1:${gw.extprocPort}`, { path: '/v1/chat/completions', headers: { 'content-type': 'application/json', 'x-request-id': id }, body, upstream: fleet.urls[0], responseBodyMode: 'BUFFERED' });
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-cache'], i === 0 ? 'MISS' : 'HIT');
      await new Promise((res) => setTimeout(res, 50));
      completions.push(lines.find((l) => l.msg === 'request' && l.requestId === id)?.completion);
    }
    assert.ok(completions[0]);
    assert.equal(completions[1], completions[0]);
  } finally {
    closeEnvoyClients();
    await gw.close();
    await fleet.close();
  }
});
