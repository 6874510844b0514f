// The header or query parameter a VerifyAPIKey (apiKey.ref) or VerifyJWT (source.ref) reads its credential from never
// reaches the model server, even on a request its template condition skips (the default VerifyAPIKey authenticates
// it from x-api-key), or when no template lists it: over HTTP and over ext_proc with a BUFFERED request body, where
// the headers go upstream with the answer to the body.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { silentLogger } from '../src/lib/logger.js';
import type { Manifest } from '../src/config/manifest.js';
import { call, createApp, until, type IssuedApp } from './helpers/apim-admin.js';
import { closeEnvoyClients, envoyExchange } from './helpers/extproc-envoy.js';
import { apiKeyManifests, manifest, poolAndModel } from './helpers/manifests.js';
import { startStub, type Stub, type StubRequest } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const HS_SECRET = 'conditional-credential-sources-hs256-0123456789';
process.env.TOLLGATE_TEST_CONDITIONAL_HS = HS_SECRET;
const BODY = { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 };

let stub: Stub;

before(async () => {
  stub = await startStub();
});

after(async () => {
  closeEnvoyClients();
  await stub?.close();
});

function start(manifests: Manifest[]): Promise<Gateway> {
  return startGateway({
    configPaths: [],
    manifests: [...manifests, ...poolAndModel([stub.url], 'm')],
    ...LOOPBACK,
    logger: silentLogger,
    extprocPort: 0,
    extproc: { requestBodyMode: 'BUFFERED' },
  });
}

/** What the model server got for one request sent over HTTP or through Envoy (BUFFERED), and the status. */
type Send = (gw: Gateway, path: string, headers: Record<string, string>) => Promise<{ status: number; sent: StubRequest['req'] }>;

const TRANSPORTS: [string, Send][] = [
  [
    'HTTP',
    async (gw, path, headers) => {
      const r = await call(gw.url, 'POST', path, BODY, headers);
      return { status: r.status, sent: stub.requests.at(-1)!.req };
    },
  ],
  [
    'ext_proc BUFFERED',
    async (gw, path, headers) => {
      const r = await envoyExchange(`127.0.0.1:${gw.extprocPort}`, {
        path,
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(BODY),
        requestBodyMode: 'BUFFERED',
        upstream: stub.url,
      });
      return { status: r.status, sent: stub.requests.at(-1)!.req };
    },
  ],
];

describe('a credential policy its template condition skips', () => {
  let gw: Gateway;
  let app: IssuedApp;
  let jwt: string;

  before(async () => {
    const policies: [kind: string, name: string, spec: unknown, condition: string][] = [
      ['VerifyAPIKey', 'partner-key', { apiKey: { ref: 'request.header.x-key' } }, "'x-partner' in request.headers"],
      ['VerifyAPIKey', 'query-key', { apiKey: { ref: 'request.queryparam.apikey' } }, "'x-by-query' in request.headers"],
      ['VerifyJWT', 'partner-jwt', { algorithms: ['HS256'], secretKey: { env: 'TOLLGATE_TEST_CONDITIONAL_HS' }, source: { ref: 'request.header.x-id-token' } }, "'x-jwt' in request.headers"],
    ];
    gw = await start([
      ...apiKeyManifests('gold', { llmOperations: { models: ['m'] } }),
      ...policies.map(([kind, name, spec]) => manifest(kind, name, spec)),
      manifest('ApimTemplate', 't', { templates: policies.map(([kind, name, , condition]) => ({ condition, policies: [{ kind, name }] })) }),
    ]);
    app = await createApp(gw.adminUrl, ['gold'], 'conditional');
    jwt = await new SignJWT({ sub: 'dana' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(HS_SECRET));
    await until(() => call(gw.url, 'POST', '/v1/chat/completions', BODY, { 'x-api-key': app.key }), (r) => r.status === 200, 5000, 'key known');
  });
  after(() => gw?.close());

  for (const [transport, send] of TRANSPORTS) {
    test(`${transport}: the key in the header it reads does not go upstream`, async () => {
      const { status, sent } = await send(gw, '/v1/chat/completions', { 'x-api-key': app.key, 'x-key': app.key, 'x-other': 'kept' });
      assert.equal(status, 200);
      assert.equal(sent.headers['x-key'], undefined);
      assert.equal(sent.headers['x-other'], 'kept');
    });

    test(`${transport}: the key in the query parameter it reads does not go upstream`, async () => {
      const { status, sent } = await send(gw, `/v1/chat/completions?tenant=t1&apikey=${app.key}`, { 'x-api-key': app.key });
      assert.equal(status, 200);
      assert.equal(sent.url, '/v1/chat/completions?tenant=t1', 'the key taken out of the query, the rest kept');
    });

    test(`${transport}: the JWT in the header a VerifyJWT reads does not go upstream`, async () => {
      const { status, sent } = await send(gw, '/v1/chat/completions', { 'x-api-key': app.key, 'x-id-token': jwt });
      assert.equal(status, 200);
      assert.equal(sent.headers['x-id-token'], undefined);
    });

    test(`${transport}: when the condition holds, the policy authenticates from its header and it is withheld as well`, async () => {
      const { status, sent } = await send(gw, '/v1/chat/completions', { 'x-partner': '1', 'x-key': app.key });
      assert.equal(status, 200);
      assert.equal(sent.headers['x-key'], undefined);
    });
  }
});

describe('a credential policy no template lists', () => {
  let gw: Gateway;

  before(async () => {
    // No credential phase at all: the template runs a SpikeArrest only.
    gw = await start([
      manifest('APIMExtensionPolicy', 'ext', { targetRef: { name: 'tollgate', kind: 'Gateway' } }),
      manifest('VerifyAPIKey', 'unlisted', { apiKey: { ref: 'request.header.x-key' } }),
      manifest('SpikeArrest', 'spike', { rate: '1000ps' }),
      manifest('ApimTemplate', 't', { templates: [{ policies: [{ kind: 'SpikeArrest', name: 'spike' }] }] }),
    ]);
  });
  after(() => gw?.close());

  for (const [transport, send] of TRANSPORTS) {
    test(`${transport}: the header it names does not go upstream`, async () => {
      const { status, sent } = await send(gw, '/v1/chat/completions', { 'x-key': 'tg_not-for-the-model-server' });
      assert.equal(status, 200);
      assert.equal(sent.headers['x-key'], undefined);
    });
  }
});
