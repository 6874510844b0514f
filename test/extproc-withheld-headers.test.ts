// What a policy decision point keeps from the model server over ext_proc, in every request body mode: a client's own
// identity headers, and the header or query parameter a VerifyAPIKey reads its key from. In STREAMED (and NONE)
// mode Envoy sends the headers upstream with the answer to them, so that answer must withhold them — and ask for an
// uncompressed answer (accept-encoding: identity), which only the decision asked for before: the client's gzip went
// upstream, and a model server that honoured it had its answer refused (502) or its usage unread.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { silentLogger } from '../src/lib/logger.js';
import { call, createApp, until, type IssuedApp } from './helpers/apim-admin.js';
import { closeEnvoyClients, envoyExchange, type BodyMode } from './helpers/extproc-envoy.js';
import { apiKeyManifests, manifest } from './helpers/manifests.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const FORGED = { 'x-tollgate-app-id': 'victim-app-id', 'x-tollgate-app': 'victim-app', 'x-tollgate-developer': 'victim-dev', 'x-tollgate-product': 'enterprise' };
const BODY = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
const MODES: BodyMode[] = ['BUFFERED', 'STREAMED', 'NONE'];

let stub: Stub;

before(async () => {
  stub = await startStub();
});

after(async () => {
  closeEnvoyClients();
  await stub?.close();
});

/** `viaAdmin`: the VerifyAPIKey and its template are applied through the admin API, not given in the files. */
async function gatewayReadingKeyFrom(ref: string, viaAdmin: boolean): Promise<Gateway> {
  const keyPolicy = [
    manifest('VerifyAPIKey', 'custom-key', { apiKey: { ref } }),
    manifest('ApimTemplate', 't', { templates: [{ policies: [{ kind: 'VerifyAPIKey', name: 'custom-key' }] }] }),
  ];
  const gw = await startGateway({
    configPaths: [],
    manifests: [
      ...apiKeyManifests('gold', { llmOperations: { models: ['m'] } }),
      ...(viaAdmin ? [] : keyPolicy),
      manifest('InferencePool', 'pool', { endpoints: [stub.url] }),
      manifest('InferenceModel', 'm', { modelName: 'm', poolRef: { name: 'pool' } }),
    ],
    ...LOOPBACK,
    logger: silentLogger,
    extprocPort: 0,
  });
  if (viaAdmin) {
    const applied = await call(gw.adminUrl, 'POST', '/v1/apply', keyPolicy.map((m) => ({ apiVersion: m.apiVersion, kind: m.kind, metadata: { name: m.metadata.name }, spec: m.spec })));
    assert.equal(applied.status, 200, JSON.stringify(applied.body));
  }
  return gw;
}

for (const [ref, inHeader, viaAdmin] of [
  ['request.header.x-key', true, false],
  ['request.queryparam.apikey', false, false],
  ['request.header.x-key', true, true],
  ['request.queryparam.apikey', false, true],
] as const) {
  describe(`a key read from ${ref}${viaAdmin ? ' by a policy applied through the admin API' : ''}`, () => {
    let gw: Gateway;
    let app: IssuedApp;
    const exchange = (requestBodyMode: BodyMode) =>
      envoyExchange(`127.0.0.1:${gw.extprocPort}`, {
        path: inHeader ? '/v1/chat/completions?tenant=t1' : `/v1/chat/completions?tenant=t1&apikey=${app.key}`,
        headers: { 'content-type': 'application/json', 'accept-encoding': 'gzip, br', ...FORGED, ...(inHeader && { 'x-key': app.key }) },
        body: BODY,
        requestBodyMode,
        upstream: stub.url,
      });
    before(async () => {
      gw = await gatewayReadingKeyFrom(ref, viaAdmin);
      app = await createApp(gw.adminUrl, ['gold'], 'withheld');
      await until(() => exchange('BUFFERED'), (x) => x.status === 200, 5000, 'key known');
    });
    after(() => gw?.close());

    for (const requestBodyMode of MODES) {
      test(`${requestBodyMode}: neither the key nor the client's identity headers reach the model server`, async () => {
        const seen = stub.requests.length;
        const r = await exchange(requestBodyMode);
        // NONE: the request goes upstream unjudged, and its answer is withheld.
        assert.equal(r.status, requestBodyMode === 'NONE' ? 500 : 200, r.body.toString());
        assert.equal(stub.requests.length, seen + 1);
        const sent = stub.requests.at(-1)!.req;
        assert.equal(sent.url, '/v1/chat/completions?tenant=t1', 'the key taken out of the query, the rest kept');
        assert.equal(sent.headers['x-key'], undefined);
        // Only a body answer that Envoy applies (BUFFERED) can say who is really calling.
        const real = requestBodyMode === 'BUFFERED' ? { id: app.appId, app: app.app, product: 'gold' } : { id: undefined, app: undefined, product: undefined };
        assert.equal(sent.headers['x-tollgate-app-id'], real.id);
        assert.equal(sent.headers['x-tollgate-app'], real.app);
        assert.equal(sent.headers['x-tollgate-product'], real.product);
        assert.notEqual(sent.headers['x-tollgate-developer'], FORGED['x-tollgate-developer']);
        assert.equal(sent.headers['accept-encoding'], 'identity');
      });
    }
  });
}
