// A cache's entries are replayed only under the answer-shaping configuration they were stored under: a response policy
// that edits or refuses answers, or a request check after the lookup, added or changed later moves the cache to a new
// namespace; a change that shapes no answer (a quota, another template's spike arrest) keeps its entries.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { manifestOf, type Manifest } from '../../config/manifest.js';
import { MemoryCounterStore } from '../../store/counters/memory.js';
import { createPolicyEngine } from '../engine.js';
import { MemoryIdentitySource } from '../memory-identity.js';
import { fakeContext } from '../testing.js';
import type { ApimState, Policy } from '../types.js';
import { CacheResources } from './cache-resources.js';
import { admit, chatAnswer, respondJson, startEmbeddingsStub, tenant } from './testing.js';

const counters = new MemoryCounterStore();
type Entry = [kind: string, name: string, spec: unknown];
/** An ApimTemplate's entries: policies, or a group of them under a condition. */
type Listed = Entry | { condition: string; policies: Entry[] };

const redact = { filters: { denyList: { action: 'redact', words: ['Paris'] } } };
const block = { filters: { denyList: { action: 'block', words: ['Paris'] } } };
const cache: Entry = ['ResponseCache', 'answers', { scope: 'product' }];
const promptGuard: Entry = ['SanitizeUserPrompt', 'prompt-guard', { filters: { denyList: { action: 'block', words: ['secret'] } } }];

function templateOf(name: string, listed: Listed[]): { template: Manifest; policies: Manifest[] } {
  const groups = listed.map((l) => (Array.isArray(l) ? { policies: [l] } : l));
  return {
    template: manifestOf('ApimTemplate', name, { templates: groups.map((g) => ({ ...('condition' in g && { condition: g.condition }), policies: g.policies.map(([kind, n]) => ({ kind, name: n })) })) }),
    policies: groups.flatMap((g) => g.policies.map(([kind, n, spec]) => manifestOf(kind, n, spec))),
  };
}

/**
 * The policies of an engine for a gateway template `t` listing `listed`, plus `products` with templates of their own;
 * each policy declared once.
 */
function compileEngine(caches: CacheResources, listed: Listed[], products: Record<string, Listed[]> = {}, extra: Manifest[] = []): readonly Policy[] {
  const gateway = templateOf('t', listed);
  const own = Object.entries(products).map(([product, l]) => ({ product, ...templateOf(`${product}-t`, l) }));
  const declared = new Map<string, Manifest>();
  for (const m of [...gateway.policies, ...own.flatMap((o) => o.policies)]) declared.set(`${m.kind}/${m.metadata.name}`, m);
  const manifests = [
    manifestOf('APIMExtensionPolicy', 'ext', { targetRef: { name: 'tollgate' } }),
    ...declared.values(),
    gateway.template,
    ...own.flatMap((o) => [o.template, manifestOf('APIProduct', o.product, { displayName: o.product, templateRefs: [{ name: `${o.product}-t` }] })]),
    ...extra,
  ];
  return createPolicyEngine({ manifests, counters, identity: new MemoryIdentitySource(), caches }).policies;
}

/** The ResponseCache of that engine. */
function compile(caches: CacheResources, listed: Listed[], products: Record<string, Listed[]> = {}, extra: Manifest[] = []): Policy {
  return compileEngine(caches, listed, products, extra).find((p) => p.type === 'response-cache')!;
}

/** Whether the cache answers the question; on a miss, the answer is stored for it. */
async function cached(policy: Policy, state: ApimState = tenant('app-1', 'gold'), question = 'Capital of France?'): Promise<boolean> {
  const ctx = fakeContext({ body: { temperature: 0, messages: [{ role: 'user', content: question }] } });
  await admit(policy, ctx, state);
  if (ctx.directResponse) return true;
  await respondJson(policy, ctx, state, chatAnswer('Paris'));
  return false;
}

/** Stores an answer under `before`, then asks again under `after`. */
async function keptAcross(before: Listed[], after: Listed[], opts: { extraAfter?: Manifest[] } = {}): Promise<boolean> {
  const caches = new CacheResources();
  assert.equal(await cached(compile(caches, before)), false);
  assert.equal(await cached(compile(caches, before)), true, 'a rebuild of the same configuration keeps the entries');
  return cached(compile(caches, after, {}, opts.extraAfter));
}

const sanitizer = (spec: unknown = redact): Entry => ['SanitizeModelResponse', 'answer-guard', spec];

describe('what moves a cache to a new namespace', () => {
  const cases: { name: string; before: Listed[]; after: Listed[]; kept: boolean }[] = [
    { name: 'an answer sanitizer added after the cache', before: [cache], after: [cache, sanitizer()], kept: false },
    { name: 'an answer sanitizer added before the cache', before: [cache], after: [sanitizer(), cache], kept: false },
    { name: 'a sanitizer made stricter (redact → block)', before: [cache, sanitizer()], after: [cache, sanitizer(block)], kept: false },
    { name: 'a sanitizer put under a condition', before: [cache, sanitizer()], after: [cache, { condition: "request.path == '/v1/x'", policies: [sanitizer()] }], kept: false },
    {
      name: 'two answer rewrites swapped',
      before: [cache, sanitizer(), ['AssignMessage', 'stamp', { assignTo: 'response', set: { jsonFields: [{ path: 'x', value: 'y' }] } }]],
      after: [cache, ['AssignMessage', 'stamp', { assignTo: 'response', set: { jsonFields: [{ path: 'x', value: 'y' }] } }], sanitizer()],
      kept: false,
    },
    { name: 'a prompt check added after the lookup (a hit skips it)', before: [cache], after: [cache, promptGuard], kept: false },
    { name: 'a prompt check added before the lookup (it runs for hits too)', before: [cache], after: [promptGuard, cache], kept: true },
    { name: 'a spike arrest added', before: [cache], after: [['SpikeArrest', 'spike', { rate: '100ps' }], cache], kept: true },
    { name: "a quota's limit changed after the lookup", before: [cache, ['Quota', 'q', { allow: 10, timeUnit: 'minute' }]], after: [cache, ['Quota', 'q', { allow: 20, timeUnit: 'minute' }]], kept: true },
    { name: 'an AssignMessage that changes response headers alone', before: [cache], after: [cache, ['AssignMessage', 'tag', { assignTo: 'response', set: { headers: [{ name: 'x-tag', value: 'a' }] } }]], kept: true },
  ];
  for (const c of cases) {
    test(`${c.name}: ${c.kept ? 'entries kept' : 'entries not replayed'}`, async () => {
      assert.equal(await keptAcross(c.before, c.after), c.kept);
    });
  }

  test('another template of policies that shape no answer keeps the entries', async () => {
    const other = templateOf('other', [['SpikeArrest', 'spike', { rate: '100ps' }]]);
    assert.equal(await keptAcross([cache], [cache], { extraAfter: [other.template, ...other.policies] }), true);
  });

  test('going back to the configuration an entry was stored under finds it again', async () => {
    const caches = new CacheResources();
    assert.equal(await cached(compile(caches, [cache])), false);
    const guarded = compile(caches, [cache, sanitizer()]);
    assert.equal(await cached(guarded), false);
    assert.equal(await cached(compile(caches, [cache])), true);
  });
});

describe("a product's own templates", () => {
  test("a product's sanitizer changes its requests' entries alone, under a gateway-level cache", async () => {
    const caches = new CacheResources();
    const gold = tenant('app-1', 'gold');
    const silver = tenant('app-2', 'silver');
    const before = compile(caches, [cache], { gold: [['SpikeArrest', 'gold-spike', { rate: '100ps' }]], silver: [['SpikeArrest', 'silver-spike', { rate: '100ps' }]] });
    assert.equal(await cached(before, gold), false);
    assert.equal(await cached(before, silver), false);
    const after = compile(caches, [cache], { gold: [['SpikeArrest', 'gold-spike', { rate: '100ps' }], sanitizer()], silver: [['SpikeArrest', 'silver-spike', { rate: '100ps' }]] });
    assert.equal(await cached(after, gold), false, "gold's sanitizer is new: its entry is not replayed");
    assert.equal(await cached(after, silver), true, "silver's entry stays");
  });

  test("a product's prompt check runs after a gateway-level lookup, so it counts wherever the product lists it", async () => {
    const caches = new CacheResources();
    const gold = tenant('app-1', 'gold');
    assert.equal(await cached(compile(caches, [cache], { gold: [['SpikeArrest', 'gold-spike', { rate: '100ps' }]] }), gold), false);
    assert.equal(await cached(compile(caches, [cache], { gold: [promptGuard, ['SpikeArrest', 'gold-spike', { rate: '100ps' }]] }), gold), false);
  });

  test("a product's own cache sees the gateway's answer policies too", async () => {
    const caches = new CacheResources();
    const gold = tenant('app-1', 'gold');
    assert.equal(await cached(compile(caches, [['SpikeArrest', 'spike', { rate: '100ps' }]], { gold: [cache] }), gold), false);
    assert.equal(await cached(compile(caches, [['SpikeArrest', 'spike', { rate: '100ps' }]], { gold: [cache] }), gold), true);
    assert.equal(await cached(compile(caches, [['SpikeArrest', 'spike', { rate: '100ps' }], sanitizer()], { gold: [cache] }), gold), false);
  });
});

test('a semantic cache follows the same configuration', async () => {
  const stub = await startEmbeddingsStub();
  try {
    const caches = new CacheResources();
    const lookup: Entry = ['SemanticCacheLookup', 'faq', { embeddings: { url: stub.url, model: 'e5' }, similaritySearch: { threshold: 0.85 }, scope: 'product' }];
    const populate: Entry = ['SemanticCachePopulate', 'faq-populate', { lookupPolicy: 'faq' }];
    const hit = async (listed: Listed[], question: string) => {
      const engine = compileEngine(caches, listed);
      const state = tenant('app-1', 'gold');
      const ctx = fakeContext({ body: { messages: [{ role: 'user', content: question }] } });
      await admit(engine.find((p) => p.type === 'semantic-cache-lookup')!, ctx, state);
      if (ctx.directResponse) return true;
      await respondJson(engine.find((p) => p.type === 'semantic-cache-populate')!, ctx, state, chatAnswer('Paris'));
      return false;
    };
    assert.equal(await hit([lookup, populate], 'What is the capital of France?'), false);
    assert.equal(await hit([lookup, populate], 'What is the capital city of France?'), true, 'a paraphrase, same configuration');
    assert.equal(await hit([lookup, populate, sanitizer()], 'What is the capital of France?'), false, 'an answer sanitizer added');
    assert.equal(await hit([lookup, promptGuard, populate], 'What is the capital of France?'), false, 'a prompt check added after the lookup');
    assert.equal(await hit([['SpikeArrest', 'spike', { rate: '100ps' }], lookup, populate], 'What is the capital of France?'), true, 'a spike arrest shapes no answer');
  } finally {
    await stub.close();
  }
});
