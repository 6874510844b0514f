// AssignMessage on the request through a real gateway: the request later policies read is the one it changed (a
// spike arrest keyed on a header it overwrote counts the caller, not the client's value), what goes upstream is
// unchanged in kind (credentials still withheld), and a JSON field is set whatever the client put on its path.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { silentLogger } from '../src/lib/logger.js';
import { call, codeOf, createApp, untilKeyKnown, type Answer, type IssuedApp } from './helpers/apim-admin.js';
import { manifest } from './helpers/manifests.js';
import { startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

let stub: Stub;
let gw: Gateway;
let app: IssuedApp;

before(async () => {
  stub = await startStub();
  const manifests = [
    manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate' } }),
    manifest('InferencePool', 'stub', { endpoints: [stub.url] }),
    manifest('InferenceModel', 'echo', { modelName: 'echo', poolRef: { name: 'stub' } }),
    manifest('APIProduct', 'gold', { displayName: 'Gold' }),
    manifest('APIOperationSet', 'gold-ops', { apiProductRefs: [{ name: 'gold' }], llmOperations: { models: ['echo'] } }),
    manifest('AssignMessage', 'normalise', {
      remove: { headers: [{ name: 'x-debug' }] },
      set: { headers: [{ name: 'x-user', value: '{developer.email}' }], jsonFields: [{ path: 'metadata.app', value: '{developer.app.name}' }] },
    }),
    manifest('AssignMessage', 'echo-user', { set: { headers: [{ name: 'x-seen-user', value: '{request.header.x-user}' }] } }),
    manifest('SpikeArrest', 'per-user', { rate: '1pm', identifier: { ref: 'request.header.x-user' } }),
    manifest('ApimTemplate', 't', {
      templates: [{ policies: [{ kind: 'AssignMessage', name: 'normalise' }, { kind: 'AssignMessage', name: 'echo-user' }, { kind: 'SpikeArrest', name: 'per-user' }] }],
    }),
  ];
  gw = await startGateway({ configPaths: [], manifests, ...LOOPBACK, logger: silentLogger });
  app = await createApp(gw.adminUrl, ['gold'], 'am-request');
  await untilKeyKnown(gw.url, app.key);
});

after(async () => {
  await gw?.close();
  await stub?.close();
});

const chat = (headers: Record<string, string>, body: Record<string, unknown> = {}): Promise<Answer> =>
  call(gw.url, 'POST', '/v1/chat/completions', { model: 'echo', messages: [{ role: 'user', content: 'hi' }], ...body }, { 'x-api-key': app.key, ...headers });

test('later policies read the header AssignMessage set: a new spoofed value per request is still one caller', async () => {
  const first = await chat({ 'x-user': 'spoof-0', 'x-debug': 'on' }, { metadata: 'not-an-object' });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const seen = stub.requests.at(-1)!;
  assert.equal(seen.req.headers['x-user'], app.email);
  assert.equal(seen.req.headers['x-seen-user'], app.email, 'the next AssignMessage read the value set, not the client\'s');
  assert.equal(seen.req.headers['x-debug'], undefined);
  assert.equal(seen.req.headers['x-api-key'], undefined, 'the credential is still withheld from the model server');
  assert.deepEqual(seen.body.metadata, { app: app.app }, 'the field is set over the client\'s string');
  const second = await chat({ 'x-user': 'spoof-1' });
  assert.equal(second.status, 429, JSON.stringify(second.body));
  assert.equal(codeOf(second), 'policies.ratelimit.SpikeArrestViolation');
  assert.equal(stub.requests.length, 1);
});
