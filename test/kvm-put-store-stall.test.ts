// KeyValueMapOperations puts when the PostgreSQL behind them stalls (connections stay open, nothing gets through), through
// a TCP proxy in front of the shared server: a put is the one write on the request path, and a request with one waited
// for it until the OS gave up on the connection, minutes later, holding its client and a pooled connection meanwhile.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { KVM_PUT_TIMEOUT_MS } from '../src/apim/kvm-view.js';
import { silentLogger } from '../src/lib/logger.js';
import { KEY_VALUE_MAP_OPERATIONS_FAULTS } from '../src/policy/index.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../src/store/test-databases.js';
import { TcpProxy } from '../src/store/test-tcp-proxy.js';
import { answerWithin, call, codeOf, createApp, untilKeyKnown, type Answer, type IssuedApp } from './helpers/apim-admin.js';
import { manifest, poolAndModel } from './helpers/manifests.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const postgres = DATABASE_BACKENDS.find((b) => b.name === 'postgres')!;

describe('KeyValueMapOperations put over a PostgreSQL that stalls', { skip: postgres.skip }, () => {
  let target: TestDatabase;
  let proxy: TcpProxy;
  let stub: Stub;
  let gw: Gateway;
  let app: IssuedApp;
  const analyticsDir = mkdtempSync(join(tmpdir(), 'tollgate-kvm-stall-'));

  before(async () => {
    target = await postgres.create();
    proxy = await TcpProxy.for(target.url, 5432);
    stub = await startStub();
    gw = await startGateway({
      configPaths: [],
      ...LOOPBACK,
      logger: silentLogger,
      db: proxy.proxied(target.url),
      dbSchema: target.schema,
      analyticsDir,
      manifests: [
        manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate' } }),
        ...poolAndModel([stub.url], 'echo'),
        manifest('APIProduct', 'gold', { displayName: 'Gold' }),
        manifest('APIOperationSet', 'gold-ops', { apiProductRefs: [{ name: 'gold' }], llmOperations: { models: ['echo'] } }),
        manifest('KeyValueMap', 'seen', {}),
        manifest('KeyValueMapOperations', 'remember', { mapIdentifier: 'seen', put: [{ key: 'last:{developer.app.id}', value: '{request.header.x-note}' }] }),
        manifest('ApimTemplate', 'notes', { templates: [{ condition: "'x-note' in request.headers", policies: [{ kind: 'KeyValueMapOperations', name: 'remember' }] }] }),
      ],
    });
    app = await createApp(gw.adminUrl, ['gold']);
    await untilKeyKnown(gw.url, app.key);
  });
  after(async () => {
    // The proxy first: it resets the stalled connections, so queries still waiting on them fail and the pool can end.
    await proxy?.close();
    await gw?.close();
    await stub?.close();
    await target?.dispose();
    rmSync(analyticsDir, { recursive: true, force: true });
  });

  const chat = (headers: Record<string, string>): Promise<Answer> =>
    call(gw.url, 'POST', '/v1/chat/completions', { model: 'echo', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 5 }, { 'x-api-key': app.key, ...headers });
  const stored = async () => (await gw.apim.db.kvm.get('environment', 'seen', `last:${app.appId}`))?.value;

  test('a request whose put cannot be stored gets 500 SetVariableFailed in time, and the put given up is not stored later', { timeout: 60_000 }, async () => {
    assert.equal((await chat({ 'x-note': 'before' })).status, 200);
    assert.equal(await stored(), 'before');
    proxy.stall();
    try {
      const started = Date.now();
      // Before the fix neither answered: they waited for as long as the stall lasted.
      const answers = await Promise.all([answerWithin(chat({ 'x-note': 'during' }), 15_000), answerWithin(chat({ 'x-note': 'during' }), 15_000)]);
      for (const a of answers) {
        assert.ok(a, 'the request is answered');
        assert.equal(a.status, 500, JSON.stringify(a.body));
        assert.equal(codeOf(a), KEY_VALUE_MAP_OPERATIONS_FAULTS.setVariableFailed);
      }
      assert.ok(Date.now() - started < KVM_PUT_TIMEOUT_MS + 2000, `answered after ${Date.now() - started} ms`);
      // A request without a put is served from memory meanwhile.
      assert.equal((await chat({})).status, 200);
    } finally {
      proxy.unstall();
    }
    // What the stalled connections held reaches the server now: the puts answered 500 must not commit after all.
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await stored(), 'before');
    assert.equal((await chat({ 'x-note': 'after' })).status, 200);
    assert.equal(await stored(), 'after');
  });
});
