// Caches key on the request as it goes upstream: the cap the product token quota sets near the end of an app's quota
// (defaultSecurityEnabled) is written before the lookup, so an answer it cut short never reaches another app; and a
// request a policy after the lookup changes (AssignMessage) is never stored under the key it was looked up with.
// ResponseCache listed at gateway level, the semantic cache in a product's template: both places the default quotas go.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import type { Manifest } from '../src/config/manifest.js';
import { silentLogger } from '../src/lib/logger.js';
import { startEmbeddingsStub, type EmbeddingsStub } from '../src/policy/caching/testing.js';
import { awayFromWindowEdge, call, createApp, untilKeyKnown, type Answer } from './helpers/apim-admin.js';
import { manifest } from './helpers/manifests.js';
import { json, startStub, type Stub, type StubRequest } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const HOUR = 3_600_000;
const QUESTION = 'What is the capital of France?';
const LANGUAGE = "'x-language' in request.headers";

/**
 * A model server that honours the output cap: under 200 it cuts the answer (`finish_reason: length`). BURN reports 4910
 * tokens used, leaving an app 90 of its 5000; a system prompt is echoed so a test can tell whose answer it got.
 */
function modelServer(r: StubRequest): void {
  const b = r.body;
  const cap = (b.max_completion_tokens ?? b.max_tokens) as number;
  const cut = cap < 200;
  const burn = JSON.stringify(b.messages).includes('BURN');
  const system = b.messages.find((m: { role: string }) => m.role === 'system')?.content ?? '';
  json(r.res, 200, {
    id: 'c',
    object: 'chat.completion',
    created: 1,
    model: b.model,
    choices: [{ index: 0, message: { role: 'assistant', content: cut ? 'The answer is' : `Paris. (${system})` }, logprobs: null, finish_reason: cut ? 'length' : 'stop' }],
    usage: burn ? { prompt_tokens: 10, completion_tokens: 4900, total_tokens: 4910 } : { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
  });
}

interface Env {
  gw: Gateway;
  stub: Stub;
  keys: Record<string, string>;
}

/** A gateway with `policies` and a product `p` (5000 tokens an hour per app) holding apps `a`, `b` and `c`. */
async function open(policies: Manifest[], productTemplate?: string): Promise<Env> {
  const stub = await startStub(modelServer);
  const gw = await startGateway({
    configPaths: [],
    manifests: [
      manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate' } }),
      manifest('InferencePool', 'stub', { endpoints: [stub.url] }),
      manifest('InferenceModel', 'chat', { modelName: 'chat', poolRef: { name: 'stub' } }),
      manifest('APIProduct', 'p', { displayName: 'p', ...(productTemplate && { templateRefs: [{ name: productTemplate }] }) }),
      manifest('APIOperationSet', 'p-ops', { apiProductRefs: [{ name: 'p' }], llmOperations: { models: ['chat'], llmTokenQuota: { limit: 5000, interval: 1, timeUnit: 'hour', countOn: 'total' } } }),
      manifest('AssignMessage', 'persona', { set: { jsonFields: [{ path: 'messages.0.content', value: 'You answer in {request.header.x-language}.' }] } }),
      ...policies,
    ],
    ...LOOPBACK,
    logger: silentLogger,
  });
  const keys: Record<string, string> = {};
  for (const label of ['a', 'b', 'c']) keys[label] = (await createApp(gw.adminUrl, ['p'], label)).key;
  for (const key of Object.values(keys)) await untilKeyKnown(gw.url, key);
  return { gw, stub, keys };
}

const chat = (env: Env, app: string, content: string, headers: Record<string, string> = {}, temperature = 0): Promise<Answer> =>
  call(env.gw.url, 'POST', '/v1/chat/completions', { model: 'chat', temperature, messages: [{ role: 'system', content: '' }, { role: 'user', content }] }, { 'x-api-key': env.keys[app], ...headers });

const contentOf = (a: Answer): string => a.body.choices[0].message.content;

/** The cases every cache must pass, on a gateway built by `open`. */
function cases(env: () => Env): void {
  test("an answer cut short by the token quota's cap near the end of one app's quota never reaches another app", async () => {
    await awayFromWindowEdge(HOUR, 10_000);
    const { stub } = env();
    assert.equal((await chat(env(), 'a', 'BURN', {}, 1)).status, 200);
    const cut = await chat(env(), 'a', QUESTION);
    assert.equal(cut.body.choices[0].finish_reason, 'length');
    assert.ok(stub.requests.at(-1)!.body.max_completion_tokens < 200, 'the quota capped what was left');

    const full = await chat(env(), 'b', QUESTION);
    assert.equal(full.headers['x-cache'], 'MISS');
    assert.equal(full.body.choices[0].finish_reason, 'stop', 'b has its whole quota: not a\'s cut answer');
    // The cap b's requests get is part of the key, and the same each time: caching still works under a token quota.
    const again = await chat(env(), 'b', QUESTION);
    assert.equal(again.headers['x-cache'], 'HIT');
    assert.equal(contentOf(again), contentOf(full));
    // A hit uses no tokens: b has spent only its first answer's 15, and the headers no longer count the reservation.
    assert.equal(again.headers['x-ratelimit-remaining-tokens'], String(5000 - 15));
  });

  test('a prompt a policy after the lookup rewrites is never stored under the key the lookup used', async () => {
    const { stub } = env();
    const french = await chat(env(), 'c', 'Say hello', { 'x-language': 'French' });
    const german = await chat(env(), 'c', 'Say hello', { 'x-language': 'German' });
    assert.equal(german.headers['x-cache'], 'MISS');
    assert.match(contentOf(french), /French/);
    assert.match(contentOf(german), /German/);
    assert.equal(stub.requests.at(-1)!.body.messages[0].content, 'You answer in German.');
  });
}

describe('ResponseCache at gateway level', () => {
  let env: Env;
  before(async () => {
    env = await open([
      manifest('ResponseCache', 'answers', { scope: 'product' }),
      manifest('ApimTemplate', 'gw', { templates: [{ policies: [{ kind: 'ResponseCache', name: 'answers' }] }, { policies: [{ kind: 'AssignMessage', name: 'persona' }], condition: LANGUAGE }] }),
    ]);
  });
  after(async () => {
    await env?.gw.close();
    await env?.stub.close();
  });
  cases(() => env);
});

describe("the semantic cache in a product's template", () => {
  let env: Env;
  let emb: EmbeddingsStub;
  before(async () => {
    emb = await startEmbeddingsStub();
    env = await open(
      [
        manifest('SemanticCacheLookup', 'faq', { embeddings: { url: emb.url, model: 'e' }, similaritySearch: { threshold: 0.9 }, scope: 'product' }),
        manifest('SemanticCachePopulate', 'faq-populate', {}),
        manifest('ApimTemplate', 'p-template', {
          templates: [{ policies: [{ kind: 'SemanticCacheLookup', name: 'faq' }, { kind: 'SemanticCachePopulate', name: 'faq-populate' }] }, { policies: [{ kind: 'AssignMessage', name: 'persona' }], condition: LANGUAGE }],
        }),
      ],
      'p-template',
    );
  });
  after(async () => {
    await env?.gw.close();
    await env?.stub.close();
    await emb?.close();
  });
  cases(() => env);
});
