// A --config change made while the database cannot be reached (PostgreSQL behind a TCP proxy that is cut): one without
// API management objects applies at once; one with them waits, the last good configuration serving, and applies once
// the database is back. Before, both were rejected and never tried again: the gateway kept the old pools and models
// until the next file change or restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { request } from 'undici';
import { startGateway } from '../src/gateway/gateway.js';
import { waitFor } from '../src/sim/testing.js';
import { DATABASE_BACKENDS } from '../src/store/test-databases.js';
import { TcpProxy } from '../src/store/test-tcp-proxy.js';
import { poolAndModelYaml } from './helpers/manifests.js';
import { startStub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const postgres = DATABASE_BACKENDS.find((b) => b.name === 'postgres')!;

const model = (name: string) => `---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: { name: ${name} }
spec: { modelName: ${name}, poolRef: { name: pool } }
`;
// API keys on, with a product: requests without a key are refused once this applies, and not before.
const PRODUCT = `---
apiVersion: apim.googleapis.com/v1
kind: APIMExtensionPolicy
metadata: { name: ext }
spec: { defaultSecurityEnabled: true, targetRef: { name: tollgate } }
---
apiVersion: apim.googleapis.com/v1
kind: APIProduct
metadata: { name: gold }
spec: { displayName: Gold }
`;

test('a configuration change while the database is down', { skip: postgres.skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-reload-outage-'));
  const stub = await startStub();
  const target = await postgres.create();
  const proxy = await TcpProxy.for(target.url, 5432);
  const logs: any[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const file = join(dir, 'config.yaml');
  writeFileSync(file, poolAndModelYaml(stub.url));
  const gw = await startGateway({ configPaths: [file], ...LOOPBACK, logger, db: proxy.proxied(target.url), dbSchema: target.schema, analyticsDir: join(dir, 'spool') });
  t.after(async () => {
    await proxy.restore();
    await gw.close();
    await proxy.close();
    await stub.close();
    await target.dispose();
    rmSync(dir, { recursive: true, force: true });
  });
  const status = async (m: string) => {
    const r = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: m, messages: [{ role: 'user', content: 'x' }] }) });
    await r.body.dump();
    return r.statusCode;
  };
  assert.equal(await status('m'), 200);
  await proxy.cut();

  // Pools and models only: nothing for the store to take.
  writeFileSync(file, poolAndModelYaml(stub.url) + model('m2'));
  assert.equal(await gw.reload(), true);
  assert.equal(await status('m2'), 200);

  // An API product too: not yet, said so, and the last good configuration serves.
  writeFileSync(file, poolAndModelYaml(stub.url) + model('m2') + model('m3') + PRODUCT);
  assert.equal(await gw.reload(), false);
  const waiting = logs.find((l) => l.msg?.includes('configuration change not applied yet'));
  assert.equal(waiting?.level, 50);
  assert.ok(waiting.retryInMs > 0);
  assert.ok(!logs.some((l) => l.msg?.includes('configuration change rejected')), 'a valid change is not "rejected"');
  // Neither the new model nor the new policies (keys) serve before the store holds the files' objects.
  assert.equal(await status('m2'), 200);
  assert.equal(await status('m3'), 404);

  // The database back: a retry applies it, without another file change.
  await proxy.restore();
  // The policies are installed a moment before the reload that brought them finishes.
  await waitFor(async () => gw.config.manifests.some((m) => m.kind === 'APIProduct' && m.metadata.name === 'gold'), 15_000, 'the change applied once the database is back', 100);
  assert.equal(await status('m3'), 401);
});
