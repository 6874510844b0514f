// OAuth access tokens when the PostgreSQL behind them stalls (connections stay open, nothing gets through), through a
// TCP proxy in front of the shared server: tokens are the one credential read from the database on the request path,
// and a request bearing one waited for it until the OS gave up on the connection, minutes later.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../src/store/test-databases.js';
import { TcpProxy } from '../src/store/test-tcp-proxy.js';
import { tempSpoolDirectory } from '../src/analytics/test-records.js';
import { call, codeOf, createApp, until, type Answer } from './helpers/apim-admin.js';
import { manifest, poolAndModel } from './helpers/manifests.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const postgres = DATABASE_BACKENDS.find((b) => b.name === 'postgres')!;

describe('VerifyAccessToken over a PostgreSQL that stalls', { skip: postgres.skip }, () => {
  let target: TestDatabase;
  let proxy: TcpProxy;
  let stub: Stub;
  let gw: Gateway;

  before(async () => {
    target = await postgres.create();
    proxy = await TcpProxy.for(target.url, 5432);
    stub = await startStub();
    const policies: [string, unknown][] = [
      ['token', { operation: 'GenerateAccessToken' }],
      ['verify-token', { operation: 'VerifyAccessToken' }],
    ];
    gw = await startGateway({
      configPaths: [],
      ...LOOPBACK,
      db: proxy.proxied(target.url),
      dbSchema: target.schema,
      analyticsDir: tempSpoolDirectory(),
      manifests: [
        manifest('APIMExtensionPolicy', 'ext', { targetRef: { name: 'tollgate' } }),
        ...poolAndModel([stub.url], 'echo'),
        manifest('APIProduct', 'gold', { displayName: 'Gold', enforcementRefs: [{ name: 'ext' }] }),
        manifest('APIOperationSet', 'gold-ops', { apiProductRefs: [{ name: 'gold' }], llmOperations: { models: ['echo'] } }),
        ...policies.map(([name, spec]) => manifest('OAuthV2', name, spec)),
        manifest('ApimTemplate', 'template', { templates: [{ policies: policies.map(([name]) => ({ kind: 'OAuthV2', name })) }] }),
      ],
    });
  });
  after(async () => {
    // The proxy first: it resets the stalled connections, so queries still waiting on them fail and the pool can end.
    await proxy?.close();
    await gw?.close();
    await stub?.close();
    await target?.dispose();
  });

  const chat = (token: string): Promise<Answer> =>
    call(gw.url, 'POST', '/v1/chat/completions', { model: 'echo', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 5 }, { authorization: `Bearer ${token}` });

  test('a token the replica has not cached gets 500 extension_failed, not a request that never ends', { timeout: 30_000 }, async () => {
    const app = await createApp(gw.adminUrl, ['gold']);
    const issue = async () => {
      const res = await request(`${gw.url}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `grant_type=client_credentials&client_id=${app.key}&client_secret=${app.secret}`,
      });
      return { status: res.statusCode, body: (await res.body.json()) as { access_token: string } };
    };
    const token = (await until(issue, (r) => r.status === 200, 5000, 'the key known to the data plane')).body.access_token;
    assert.equal((await chat(token)).status, 200);
    // Past the replica's one-second trust in what it read, so the next request reads the table again.
    await new Promise((r) => setTimeout(r, 1100));
    proxy.stall();
    const answers = await Promise.all([chat(token), chat(token)]);
    for (const a of answers) {
      assert.equal(a.status, 500, JSON.stringify(a.body));
      assert.equal(codeOf(a), 'extension_failed');
    }
  });
});
