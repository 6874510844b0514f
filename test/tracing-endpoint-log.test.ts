// A hosted collector's OTLP URL may carry its credential (https://user:token@host): the log line a tracing reload
// writes shows the URL with the password redacted, as the --db and --redis URLs are.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileConfig } from '../src/config/runtime-config.js';
import { startGateway } from '../src/gateway/gateway.js';
import { collectingLogger } from './helpers/log-lines.js';
import { poolAndModel, settings } from './helpers/manifests.js';
import { startStub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

test('a tracing reload logs the collector URL without its password', async () => {
  const stub = await startStub();
  const { logger, lines } = collectingLogger<{ msg: string; endpoint?: string }>();
  const manifests = (tracing: Record<string, unknown>) => [...poolAndModel([stub.url]), settings({ tracing })];
  const gw = await startGateway({ configPaths: [], manifests: manifests({}), ...LOOPBACK, logger });
  try {
    gw.apply(compileConfig(manifests({ endpoint: 'https://tenant-42:glc_S3CRET@127.0.0.1:9/otlp' })));
    const line = lines.find((l) => l.msg === 'tracing with the new settings');
    assert.equal(line?.endpoint, 'https://tenant-42:***@127.0.0.1:9/otlp');
    assert.ok(!JSON.stringify(lines).includes('glc_S3CRET'));
  } finally {
    await gw.close();
    await stub.close();
  }
});
