// ResponseCache with the response policies of the requests it answers: a hit gets its own request's response headers,
// and no answer is stored that the response policies made for the request that filled the cache alone (a rewrite
// from the caller's variables in a product-wide cache, a sanitizer its condition skipped, a product's own sanitizer
// in a global cache), so none reaches a request whose response flow would have made it something else.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import type { Manifest } from '../src/config/manifest.js';
import { silentLogger } from '../src/lib/logger.js';
import { call, createApp, untilKeyKnown, type Answer, type IssuedApp } from './helpers/apim-admin.js';
import { manifest } from './helpers/manifests.js';
import { json, startStub, type Stub } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';

const SECRET = 'AKIAIOSFODNN7EXAMPLQ';
const redact = { filters: { secrets: { action: 'redact' } } };
const tagHeader = { name: 'x-app', value: '{developer.email}' };

/** Each product runs one template of these entries (a condition, the policies in order). */
const products: Record<string, { condition?: string; policies: [kind: string, name: string, spec: unknown][] }[]> = {
  tagged: [
    {
      policies: [
        ['ResponseCache', 'tag-cache', { scope: 'product' }],
        ['AssignMessage', 'tag-answer', { assignTo: 'response', set: { headers: [tagHeader], jsonFields: [{ path: 'tollgate.developer', value: '{developer.email}' }] } }],
      ],
    },
  ],
  headed: [
    {
      policies: [
        ['ResponseCache', 'head-cache', { scope: 'product' }],
        ['AssignMessage', 'head-answer', { assignTo: 'response', set: { headers: [tagHeader], jsonFields: [{ path: 'tollgate.gateway', value: 'tollgate' }] } }],
      ],
    },
  ],
  guarded: [
    { policies: [['ResponseCache', 'guard-cache', {}]] },
    { condition: "!('x-internal' in request.headers)", policies: [['SanitizeModelResponse', 'guard', redact]] },
  ],
  // Two policies over one global resource: what one product's requests get must not answer the other's.
  open: [{ policies: [['ResponseCache', 'shared-open', { scope: 'global', cacheResource: 'shared' }]] }],
  filtered: [{ policies: [['ResponseCache', 'shared-filtered', { scope: 'global', cacheResource: 'shared' }], ['SanitizeModelResponse', 'filter', redact]] }],
};

function manifests(upstream: string): Manifest[] {
  return [
    manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate' } }),
    manifest('InferencePool', 'stub', { endpoints: [upstream] }),
    manifest('InferenceModel', 'm', { modelName: 'm', poolRef: { name: 'stub' } }),
    ...Object.entries(products).flatMap(([name, entries]) => [
      manifest('APIProduct', name, { displayName: name, templateRefs: [{ name }] }),
      manifest('APIOperationSet', `${name}-ops`, { apiProductRefs: [{ name }] }),
      manifest('ApimTemplate', name, {
        templates: entries.map((e) => ({ ...(e.condition && { condition: e.condition }), policies: e.policies.map(([kind, policy]) => ({ kind, name: policy })) })),
      }),
      ...entries.flatMap((e) => e.policies.map(([kind, policy, spec]) => manifest(kind, policy, spec))),
    ]),
  ];
}

let stub: Stub;
let gw: Gateway;
const apps: Record<string, IssuedApp> = {};

before(async () => {
  stub = await startStub((r) =>
    json(r.res, 200, { id: 'c1', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: `the key is ${SECRET}` }, finish_reason: 'stop' }] }),
  );
  gw = await startGateway({ configPaths: [], manifests: manifests(stub.url), ...LOOPBACK, logger: silentLogger });
  for (const [label, product] of [['tagged1', 'tagged'], ['tagged2', 'tagged'], ['headed1', 'headed'], ['headed2', 'headed'], ['guarded', 'guarded'], ['open', 'open'], ['filtered', 'filtered']]) {
    apps[label] = await createApp(gw.adminUrl, [product], label);
  }
  for (const a of Object.values(apps)) await untilKeyKnown(gw.url, a.key);
});

after(async () => {
  await gw?.close();
  await stub?.close();
});

function chat(app: string, prompt: string, headers: Record<string, string> = {}): Promise<Answer> {
  return call(gw.url, 'POST', '/v1/chat/completions', { model: 'm', temperature: 0, messages: [{ role: 'user', content: prompt }] }, { 'x-api-key': apps[app].key, ...headers });
}

/** tollgate_cache_events_total of `policy`, by event, from the admin /metrics. */
async function cacheEvents(policy: string): Promise<Record<string, number>> {
  const text = String((await call(gw.adminUrl, 'GET', '/metrics')).body);
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^tollgate_cache_events_total\{policy="([\w-]+)",event="(\w+)"\} (\d+)$/gm)) if (m[1] === policy) out[m[2]] = Number(m[3]);
  return out;
}

test('a rewrite from the caller\'s variables is not stored in a product-wide cache, and is counted', async () => {
  const a = await chat('tagged1', 'tag me');
  assert.equal(a.headers['x-cache'], 'MISS');
  assert.deepEqual(a.body.tollgate, { developer: apps.tagged1.email });
  // Before: B was answered from the cache with A's email in the body, and no x-app header.
  const b = await chat('tagged2', 'tag me');
  assert.equal(b.headers['x-cache'], 'MISS');
  assert.deepEqual(b.body.tollgate, { developer: apps.tagged2.email });
  assert.equal(b.headers['x-app'], apps.tagged2.email);
  const events = await cacheEvents('tag-cache');
  assert.equal(events.stored, 0);
  assert.equal(events.notReplayable, 2);
});

test('a hit gets the header changes of its own request\'s response policies', async () => {
  const a = await chat('headed1', 'head me');
  assert.equal(a.headers['x-cache'], 'MISS');
  assert.equal(a.headers['x-app'], apps.headed1.email);
  const b = await chat('headed2', 'head me');
  assert.equal(b.headers['x-cache'], 'HIT');
  assert.deepEqual(b.body.tollgate, { gateway: 'tollgate' }, 'a literal rewrite is the same for every request, so it is stored');
  // Before: the hit had no x-app at all.
  assert.equal(b.headers['x-app'], apps.headed2.email);
});

test('an answer a conditional sanitizer skipped is not stored, so it is never replayed to a request it must redact', async () => {
  const internal = await chat('guarded', 'guard me', { 'x-internal': '1' });
  assert.equal(internal.body.choices[0].message.content, `the key is ${SECRET}`);
  // Before: this was a HIT with the internal request's raw answer.
  const external = await chat('guarded', 'guard me');
  assert.equal(external.headers['x-cache'], 'MISS');
  assert.equal(external.body.choices[0].message.content, 'the key is [REDACTED:awsAccessKey]');
  assert.equal((await cacheEvents('guard-cache')).notReplayable, 1);
});

test('in a global cache, an answer one product\'s sanitizer would redact never reaches its requests from another product\'s', async () => {
  const open = await chat('open', 'share me');
  assert.equal(open.body.choices[0].message.content, `the key is ${SECRET}`);
  // Before: a HIT with the other product's raw answer.
  const filtered = await chat('filtered', 'share me');
  assert.equal(filtered.headers['x-cache'], 'MISS');
  assert.equal(filtered.body.choices[0].message.content, 'the key is [REDACTED:awsAccessKey]');
});
