// An LLMTokenQuota sets an output cap when the client gives none (so the model cannot produce more than was
// reserved). With the default cap of 4,096 tokens, a long prompt to a model with a short context was refused by the
// model server (400 context_length_exceeded) through the gateway although it answered it directly. The cap now leaves
// the prompt room in the context length the engines report on /v1/models (vLLM's max_model_len).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { startSimFleet, type SimFleet } from '../src/sim/index.js';
import { waitFor } from '../src/sim/testing.js';
import { createApp, untilKeyKnown } from './helpers/apim-admin.js';
import { tokenQuotaManifests } from './helpers/manifests.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const CONTEXT = 2048;
let fleet: SimFleet;
let gw: Gateway;
let key: string;

before(async () => {
  fleet = await startSimFleet({ replicas: 2, model: 'base-model', timeScale: 100, maxModelLen: CONTEXT });
  gw = await startGateway({
    configPaths: [],
    manifests: tokenQuotaManifests(fleet.urls),
    ...LOOPBACK,
  });
  const app = await createApp(gw.adminUrl, ['p'], 'context');
  key = app.key;
  await untilKeyKnown(gw.url, key);
});

after(async () => {
  await gw?.close();
  await fleet?.close();
});

test('a long prompt without max_tokens is answered: the cap tollgate sets fits the context length the engines report', async () => {
  // Each endpoint's models are read on its own: the pool knows the length from the first, the fleet view shows each.
  await waitFor(() => gw.picker.view('pool')!.endpoints.every((e) => e.contextWindow !== null), 5000, 'the context length read from /v1/models');
  assert.equal(gw.picker.contextWindow('pool'), CONTEXT);
  assert.deepEqual(gw.picker.view('pool')!.endpoints.map((e) => e.contextWindow), [CONTEXT, CONTEXT], 'shown in the fleet view');
  const prompt = Array.from({ length: 300 }, (_, i) => `word${i} and more`).join(' ');
  const r = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: prompt }] }),
  });
  const body = (await r.json()) as { usage?: { prompt_tokens: number }; error?: unknown };
  assert.equal(r.status, 200, JSON.stringify(body));
  assert.ok(body.usage!.prompt_tokens > 1000, `a long prompt: ${body.usage!.prompt_tokens} tokens`);
});
