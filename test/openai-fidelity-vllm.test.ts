// What clients written for vLLM send and read, through the gateway as against vLLM itself: content parts in vLLM's
// short forms without `type` (accepted, and their URLs still judged by SanitizeUserPrompt), and the model cards'
// vLLM fields (`max_model_len` from the engines, `root`, `parent`), from the data plane and from ext_proc alike.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startExtprocServer, type ExtprocServer } from '../src/extproc/server.js';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { silentLogger } from '../src/lib/logger.js';
import { startSimFleet, type SimFleet } from '../src/sim/index.js';
import { waitFor } from '../src/sim/testing.js';
import { call, codeOf, createApp, untilKeyKnown } from './helpers/apim-admin.js';
import { closeEnvoyClients, envoyExchange } from './helpers/extproc-envoy.js';
import { manifest, settings } from './helpers/manifests.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';
import { untilEndpoints } from './helpers/pool-ready.js';

const CONTEXT = 3072;
let fleet: SimFleet;
let gw: Gateway;
let pdp: ExtprocServer;
let key: Record<string, string>;

before(async () => {
  fleet = await startSimFleet({ replicas: 2, model: 'base-model', timeScale: 100, maxModelLen: CONTEXT });
  const ext = [{ name: 'ext', kind: 'APIMExtensionPolicy', group: 'apim.googleapis.com' }];
  gw = await startGateway({
    configPaths: [],
    manifests: [
      manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate' } }),
      manifest('APIProduct', 'p', { displayName: 'P', approvalType: 'auto', enforcementRefs: ext, templateRefs: [{ name: 'guard' }] }),
      manifest('APIOperationSet', 'p-ops', { apiProductRefs: [{ name: 'p' }] }),
      manifest('SanitizeUserPrompt', 'prompt-guard', {}),
      manifest('ApimTemplate', 'guard', { templates: [{ policies: [{ kind: 'SanitizeUserPrompt', name: 'prompt-guard' }] }] }),
      manifest('InferencePool', 'pool', { endpoints: fleet.urls }),
      manifest('InferenceModel', 'base-model', { modelName: 'base-model', poolRef: { name: 'pool' } }),
      manifest('InferenceModel', 'chat', { modelName: 'chat', poolRef: { name: 'pool' }, targetModels: [{ name: 'base-model', weight: 1 }] }),
      manifest('InferenceModel', 'canary', {
        modelName: 'canary',
        poolRef: { name: 'pool' },
        targetModels: [{ name: 'base-model', weight: 9 }, { name: 'base-model-next', weight: 1 }],
      }),
      // A scrape timeout of 5 s (5 intervals, at most staleAfter): the engines' /v1/models is read once a minute, and a
      // first read that outlasts the default 250 ms on a machine busy with other tests waits a minute for the next.
      settings({ scheduler: { scrapeInterval: '1s', staleAfter: '5s' } }),
    ],
    ...LOOPBACK,
    logger: silentLogger,
  });
  pdp = await startExtprocServer({ dataPlane: gw.dataPlane, logger: silentLogger }, { port: 0, host: '127.0.0.1', roles: ['pdp'] });
  const app = await createApp(gw.adminUrl, ['p'], 'vllm-fidelity');
  key = { 'x-api-key': app.key };
  await untilKeyKnown(gw.url, app.key);
  await untilEndpoints(gw);
});

after(async () => {
  closeEnvoyClients();
  await pdp?.close(100);
  await gw?.close();
  await fleet?.close();
});

const chat = (content: unknown) => call(gw.url, 'POST', '/v1/chat/completions', { model: 'chat', max_tokens: 4, messages: [{ role: 'user', content }] }, key);

describe('content parts in vLLM\'s short forms, without type', () => {
  test('are passed to the model server, as vLLM (and the simulator) take them', async () => {
    for (const part of [{ image_url: 'https://images.example.com/cat.png' }, { audio_url: 'https://media.example.com/a.wav' }, { input_audio: { data: 'UklGRg==', format: 'wav' } }]) {
      const r = await chat([{ type: 'text', text: 'Describe this.' }, part]);
      assert.equal(r.status, 200, `${JSON.stringify(part)}: ${JSON.stringify(r.body)}`);
    }
  });

  test('have their URLs judged by SanitizeUserPrompt as the typed forms\' are', async () => {
    for (const part of [{ audio_url: 'http://45.33.32.156/a.wav' }, { video_url: { url: 'http://45.33.32.156/v.mp4' } }, { image_url: { url: 'http://45.33.32.156/x.png' } }]) {
      const r = await chat([{ type: 'text', text: 'Describe this.' }, part]);
      assert.equal(r.status, 400, JSON.stringify(part));
      assert.equal(codeOf(r), 'steps.sanitize.UserPromptBlocked', `${JSON.stringify(part)}: ${JSON.stringify(r.body)}`);
    }
  });

  test('a bare string among the parts is refused, saying what content takes', async () => {
    const r = await chat(['Describe this.']);
    assert.equal(r.status, 400);
    assert.equal(r.body.error.param, 'messages[0].content');
    assert.match(r.body.error.message, /array of content parts \(objects/);
  });
});

describe('GET /v1/models carries vLLM\'s max_model_len, root and parent', () => {
  before(() => waitFor(() => gw.picker.contextWindow('pool') === CONTEXT, 10_000, 'the context length read from the engines\' /v1/models'));

  const card = (id: string, root: string | null) => ({ id, object: 'model', owned_by: 'tollgate', root, parent: null, max_model_len: CONTEXT, pool: 'pool' });
  const without = ({ created, ...rest }: { created: number }) => (assert.equal(typeof created, 'number'), rest);

  test('the list and one model, from the data plane and from ext_proc', async () => {
    const expected = [card('base-model', 'base-model'), card('chat', 'base-model'), card('canary', null)];
    const list = await call(gw.url, 'GET', '/v1/models', undefined, key);
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.data.map(without), expected);
    const one = await call(gw.url, 'GET', '/v1/models/chat', undefined, key);
    assert.deepEqual(without(one.body), card('chat', 'base-model'));

    const viaEnvoy = await envoyExchange(`127.0.0.1:${pdp.port}`, { path: '/v1/models', headers: key, upstream: fleet.urls[0] });
    assert.ok(viaEnvoy.local, viaEnvoy.body.toString());
    assert.deepEqual(JSON.parse(viaEnvoy.body.toString()).data.map(without), expected);
  });
});
