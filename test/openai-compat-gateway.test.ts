// What the openai SDK makes of tollgate's refusals: 1) an LLMTokenQuota 429 for a request that can never fit carries
// no retry-after, yet the SDK retries every 429 (twice by default) unless told `x-should-retry: false`; 2) with
// faultFormat: apigee the SDK reads only `error`, so without it the right class came with no code or message
// ("404 status code (no body)").
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { startSimFleet, type SimFleet } from '../src/sim/index.js';
import { createApp, untilKeyKnown } from './helpers/apim-admin.js';
import { manifest } from './helpers/manifests.js';

let fleet: SimFleet;
const gateways: Gateway[] = [];

async function gatewayWith(faultFormat: 'openai' | 'apigee'): Promise<{ gw: Gateway; key: string }> {
  const ext = [{ name: 'ext', kind: 'APIMExtensionPolicy', group: 'apim.googleapis.com' }];
  const gw = await startGateway({
    configPaths: [],
    manifests: [
      manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate', kind: 'Gateway' }, faultFormat }),
      manifest('APIProduct', 'p', { displayName: 'P', approvalType: 'auto', enforcementRefs: ext }),
      manifest('APIOperationSet', 'p-ops', { apiProductRefs: [{ name: 'p' }] }),
      manifest('LLMTokenQuota', 'tokens', { limit: 60, timeUnit: 'minute', countOn: 'total' }),
      manifest('ApimTemplate', 'limits', { templates: [{ policies: [{ kind: 'LLMTokenQuota', name: 'tokens' }] }] }),
      manifest('InferencePool', 'pool', { endpoints: fleet.urls }),
      manifest('InferenceModel', 'chat', { modelName: 'chat', poolRef: { name: 'pool' }, targetModels: [{ name: 'base-model', weight: 1 }] }),
    ],
    port: 0,
    adminPort: 0,
    host: '127.0.0.1',
    watch: false,
  });
  gateways.push(gw);
  const app = await createApp(gw.adminUrl, ['p'], 'gwbug');
  await untilKeyKnown(gw.url, app.key);
  return { gw, key: app.key };
}

before(async () => {
  fleet = await startSimFleet({ replicas: 1, model: 'base-model', timeScale: 50 });
});

after(async () => {
  for (const gw of gateways) await gw.close();
  await fleet?.close();
});

test('a token-quota 429 that can never fit is not retried by the SDK', async () => {
  const { gw, key } = await gatewayWith('openai');
  let calls = 0;
  const client = new OpenAI({
    baseURL: `${gw.url}/v1`,
    apiKey: key,
    // The SDK's defaults: two retries, short backoff.
    fetch: (url, init) => {
      calls++;
      return fetch(url, init);
    },
  });
  await assert.rejects(
    client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1000 }),
    (err: unknown) => err instanceof OpenAI.RateLimitError && err.code === 'policies.llmtokenquota.LLMTokenQuotaViolation',
  );
  assert.equal(calls, 1, 'the SDK sent the hopeless request again');
});

test('with faultFormat apigee the SDK error still carries code and message', async () => {
  const { gw, key } = await gatewayWith('apigee');
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 0 });
  await assert.rejects(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'hi' }] }), (err: unknown) => {
    assert.ok(err instanceof OpenAI.NotFoundError);
    assert.equal(err.code, 'model_not_found', `the SDK saw: ${err.message}`);
    assert.match(err.message, /does not exist/);
    return true;
  });
});
