// A cache hit skips the response flow, so a cached answer must never outlive the policies that shaped it: a
// SanitizeModelResponse added (or made stricter) later through the admin API, or present in a gateway restarted over
// the same Redis, is never bypassed by an entry stored before it, while a change that shapes no answer keeps the
// cache. Also: purging one cache resource through the admin API (audited), the load-time warning for a prompt check
// listed after a cache lookup, and `stream_options: {}` keeping its usage chunk on a vLLM pool, miss and hit alike.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import type { Manifest } from '../src/config/manifest.js';
import { silentLogger } from '../src/lib/logger.js';
import { randomBase62 } from '../src/store/keys.js';
import { call, createApp, untilKeyKnown, type Answer } from './helpers/apim-admin.js';
import { collectingLogger } from './helpers/log-lines.js';
import { manifest } from './helpers/manifests.js';
import { json, startStub, type Stub, type StubRequest } from './helpers/stub-upstream.js';
import { LOOPBACK } from './helpers/loopback-gateway.js';
import { deleteKeysAt } from '../src/store/caches/redis.js';

const REDIS_URL = process.env.REDIS_URL;
const WORD = 'Paris';
const ANSWER = `The capital of France is ${WORD}.`;
const USAGE = { prompt_tokens: 9, completion_tokens: 7, total_tokens: 16 };

/**
 * Answers as vLLM does: JSON, or a stream ending with a usage chunk when `stream_options` is given without
 * `include_usage` false or null (vLLM's StreamOptions defaults it to true).
 */
function vllmLike(r: StubRequest): void {
  const head = { id: 'c1', created: 1, model: 'm' };
  if (!r.body.stream) return json(r.res, 200, { ...head, object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: ANSWER }, finish_reason: 'stop' }], usage: USAGE });
  const options = r.body.stream_options;
  const asked = options != null && (options.include_usage === undefined || options.include_usage === true);
  const chunk = (choices: unknown[], extra = {}) => `data: ${JSON.stringify({ ...head, object: 'chat.completion.chunk', choices, ...extra })}\n\n`;
  r.res.writeHead(200, { 'content-type': 'text/event-stream' });
  r.res.write(chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]));
  r.res.write(chunk([{ index: 0, delta: { content: ANSWER }, finish_reason: null }]));
  r.res.write(chunk([{ index: 0, delta: {}, finish_reason: 'stop' }]));
  if (asked) r.res.write(chunk([], { usage: USAGE }));
  r.res.end('data: [DONE]\n\n');
}

/** The manifests every gateway here starts with (its --config files): the rest is applied, or given per test. */
const base = (upstream: string): Manifest[] => [
  manifest('APIMExtensionPolicy', 'ext', { defaultSecurityEnabled: true, targetRef: { name: 'tollgate' } }),
  manifest('InferencePool', 'pool', { endpoints: [upstream] }),
  manifest('InferenceModel', 'm', { modelName: 'm', poolRef: { name: 'pool' } }),
];

/** Product `p` running template `pt` of these policies, in order, as JSON documents for /v1/apply or as manifests. */
function productWith(policies: [kind: string, name: string, spec: unknown][]): Manifest[] {
  return [
    manifest('APIProduct', 'p', { displayName: 'p', templateRefs: [{ name: 'pt' }] }),
    manifest('APIOperationSet', 'p-ops', { apiProductRefs: [{ name: 'p' }] }),
    manifest('ApimTemplate', 'pt', { templates: [{ policies: policies.map(([kind, name]) => ({ kind, name })) }] }),
    ...policies.map(([kind, name, spec]) => manifest(kind, name, spec)),
  ];
}

const documents = (manifests: Manifest[]) => manifests.map((m) => ({ apiVersion: m.apiVersion, kind: m.kind, metadata: { name: m.metadata.name }, spec: m.spec }));

const redact = { filters: { denyList: { action: 'redact', words: [WORD] } } };
const block = { filters: { denyList: { action: 'block', words: [WORD] } } };
const QUESTION = { model: 'm', temperature: 0, messages: [{ role: 'user', content: 'What is the capital of France?' }] };

function chat(gw: Gateway, key: string, body: Record<string, unknown> = QUESTION): Promise<Answer> {
  return call(gw.url, 'POST', '/v1/chat/completions', body, { 'x-api-key': key });
}

/** The text of an answer, JSON or SSE. */
function textOf(a: Answer): string {
  return typeof a.body === 'string' ? a.body : JSON.stringify(a.body);
}

let stub: Stub;
before(async () => {
  stub = await startStub(vllmLike);
});
after(() => stub?.close());

describe('response policies changed through the admin API (memory store)', () => {
  let gw: Gateway;
  let key: string;
  const cache: [string, string, unknown] = ['ResponseCache', 'rc', { scope: 'product', cacheResource: 'answers' }];
  const apply = async (manifests: Manifest[]) => {
    const answer = await call(gw.adminUrl, 'POST', '/v1/apply', documents(manifests));
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
  };

  before(async () => {
    gw = await startGateway({ configPaths: [], manifests: base(stub.url), ...LOOPBACK, logger: silentLogger });
    await apply(productWith([cache]));
    key = (await createApp(gw.adminUrl, ['p'], 'change')).key;
    await untilKeyKnown(gw.url, key);
  });
  after(() => gw?.close());

  test('an answer sanitizer added later is never bypassed by an entry stored before it; an unrelated change keeps the cache', async () => {
    assert.equal((await chat(gw, key)).headers['x-cache'], 'MISS');
    assert.equal((await chat(gw, key)).headers['x-cache'], 'HIT');

    // Another gateway-wide template of a policy that shapes no answer: the entry stays.
    await apply([manifest('SpikeArrest', 'spike', { rate: '1000ps' }), manifest('ApimTemplate', 'limits', { templates: [{ policies: [{ kind: 'SpikeArrest', name: 'spike' }] }] })]);
    assert.equal((await chat(gw, key)).headers['x-cache'], 'HIT', 'a spike arrest shapes no answer');

    await apply(productWith([cache, ['SanitizeModelResponse', 'guard', redact]]));
    // Before: a HIT with the stored answer, the deny-listed word in it.
    const after = await chat(gw, key);
    assert.equal(after.headers['x-cache'], 'MISS');
    assert.equal(after.body.choices[0].message.content, 'The capital of France is [REDACTED:word].');
    const streamed = await chat(gw, key, { ...QUESTION, stream: true });
    assert.equal(streamed.headers['x-cache'], 'HIT', 'the redacted answer is the new configuration\'s entry');
    assert.ok(!textOf(streamed).includes(WORD));

    // Made stricter: the redacted entry is the redacting sanitizer's, not the blocking one's.
    await apply(productWith([cache, ['SanitizeModelResponse', 'guard', block]]));
    const blocked = await chat(gw, key);
    assert.equal(blocked.status, 403);
    assert.equal(blocked.body.error.code, 'steps.sanitize.ModelResponseBlocked');
    assert.notEqual(blocked.headers['x-cache'], 'HIT');
  });

  test('DELETE /v1/caches/{resource}/entries purges one resource, audited; an unknown resource is a 404', async () => {
    await apply(productWith([cache]));
    const question = { ...QUESTION, messages: [{ role: 'user', content: 'Purge me?' }] };
    assert.equal((await chat(gw, key, question)).headers['x-cache'], 'MISS');
    assert.equal((await chat(gw, key, question)).headers['x-cache'], 'HIT');
    const purged = await call(gw.adminUrl, 'DELETE', '/v1/caches/answers/entries', undefined, { 'x-tollgate-actor': 'ops' });
    assert.equal(purged.status, 200, JSON.stringify(purged.body));
    assert.equal(purged.body.cacheResource, 'answers');
    assert.ok(purged.body.entries >= 1);
    assert.equal((await chat(gw, key, question)).headers['x-cache'], 'MISS');
    const audit = await call(gw.adminUrl, 'GET', '/v1/audit?resourceType=cache&resourceName=answers');
    assert.equal(audit.body.items[0].action, 'purge');
    assert.equal(audit.body.items[0].actor, 'loopback:ops');
    assert.deepEqual(audit.body.items[0].detail, { entries: purged.body.entries });
    const unknown = await call(gw.adminUrl, 'DELETE', '/v1/caches/no-such-cache/entries');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'not_found');
  });
});

describe('a gateway restarted over the same Redis with a sanitizer', { skip: REDIS_URL ? false : 'REDIS_URL not set' }, () => {
  const keyPrefix = `tollgate:test:${randomBase62(12)}:`;
  after(() => deleteKeysAt(REDIS_URL!, keyPrefix));

  async function serving(policies: [string, string, unknown][], run: (gw: Gateway, key: string) => Promise<void>): Promise<void> {
    const gw = await startGateway({ configPaths: [], manifests: [...base(stub.url), ...productWith(policies)], redis: REDIS_URL, redisKeyPrefix: keyPrefix, ...LOOPBACK, logger: silentLogger });
    try {
      const key = (await createApp(gw.adminUrl, ['p'], 'restart')).key;
      await untilKeyKnown(gw.url, key);
      await run(gw, key);
    } finally {
      await gw.close();
    }
  }

  test('does not replay what the gateway before it stored without one', async () => {
    const cache: [string, string, unknown] = ['ResponseCache', 'rc', { scope: 'product', store: 'redis' }];
    await serving([cache], async (gw, key) => {
      assert.equal((await chat(gw, key)).headers['x-cache'], 'MISS');
      assert.equal((await chat(gw, key)).headers['x-cache'], 'HIT');
    });
    await serving([cache, ['SanitizeModelResponse', 'guard', block]], async (gw, key) => {
      // Before: 200 HIT with the blocked word.
      const a = await chat(gw, key);
      assert.equal(a.status, 403);
      assert.equal(a.body.error.code, 'steps.sanitize.ModelResponseBlocked');
    });
    // Back to the first configuration: its entry is found again (nothing was lost, only unreachable meanwhile).
    await serving([cache], async (gw, key) => {
      assert.equal((await chat(gw, key)).headers['x-cache'], 'HIT');
    });
  });
});

describe('a prompt check listed after a cache lookup', () => {
  const warnings = async (policies: [string, string, unknown][]) => {
    const { logger, lines } = collectingLogger<{ msg: string; level: number; policies?: string[] }>();
    const gw = await startGateway({ configPaths: [], manifests: [...base(stub.url), ...productWith(policies)], ...LOOPBACK, logger });
    await gw.close();
    return lines.filter((l) => l.msg.startsWith('prompt checks listed after a cache lookup'));
  };
  const guard: [string, string, unknown] = ['SanitizeUserPrompt', 'guard', { filters: { denyList: { action: 'block', words: ['secret'] } } }];
  const cache: [string, string, unknown] = ['ResponseCache', 'rc', {}];

  test('is accepted with a warning naming the template and both policies', async () => {
    const found = await warnings([cache, guard]);
    // Logged by every build of the policies, as the other load-time warnings are (a start builds them more than once).
    assert.ok(found.length > 0);
    for (const line of found) {
      assert.equal(line.level, 40);
      assert.deepEqual(line.policies, ['SanitizeUserPrompt/guard (ApimTemplate/pt) after ResponseCache/rc (ApimTemplate/pt)']);
    }
  });

  test('listed before the lookup, says nothing', async () => {
    assert.deepEqual(await warnings([guard, cache]), []);
  });
});

describe('stream_options: {} on a vLLM pool', () => {
  let gw: Gateway;
  let key: string;
  before(async () => {
    gw = await startGateway({ configPaths: [], manifests: [...base(stub.url), ...productWith([['ResponseCache', 'rc', {}]])], ...LOOPBACK, logger: silentLogger });
    key = (await createApp(gw.adminUrl, ['p'], 'usage')).key;
    await untilKeyKnown(gw.url, key);
  });
  after(() => gw?.close());

  test('gets the usage chunk vLLM sends for it, from a miss and from a hit', async () => {
    const body = { ...QUESTION, stream: true, stream_options: {} };
    const usageChunk = (a: Answer) => textOf(a).includes(`"usage":${JSON.stringify(USAGE)}`);
    const miss = await chat(gw, key, body);
    assert.equal(miss.headers['x-cache'], 'MISS');
    // Before: tollgate set include_usage itself, took the chunk for its own, and dropped it.
    assert.ok(usageChunk(miss), textOf(miss));
    const hit = await chat(gw, key, body);
    assert.equal(hit.headers['x-cache'], 'HIT');
    assert.ok(usageChunk(hit), textOf(hit));
    const without = await chat(gw, key, { ...body, stream_options: { include_usage: false } });
    assert.ok(!usageChunk(without), 'include_usage: false still asks for none');
  });
});
