// The caches' stores across engine rebuilds: policies naming one cacheResource must agree on its options (refused at
// load, naming both, instead of each emptying the other's store at every rebuild); a rebuild, or an engine built only
// to check a configuration, never empties a store the serving policies use; and a store no compiled policy uses any
// more (its policy deleted or renamed) is let go, and so are its policy's tollgate_cache_events_total series.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ConfigError, type Manifest } from '../src/config/manifest.js';
import { MemoryCounterStore } from '../src/store/counters/memory.js';
import { CacheResources } from '../src/policy/caching/cache-resources.js';
import { admit, chatAnswer, respondJson, tenant } from '../src/policy/caching/testing.js';
import { createPolicyEngine } from '../src/policy/engine.js';
import { MemoryIdentitySource } from '../src/policy/memory-identity.js';
import { responseCache } from '../src/policy/policies/response-cache/response-cache.js';
import { fakeContext, testDeps } from '../src/policy/testing.js';
import type { Policy } from '../src/policy/types.js';
import { Registry } from 'prom-client';
import { registerCacheEvents } from '../src/policy/caching/cache-events.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const counters = new MemoryCounterStore();
const state = tenant('app-1');
/** The PolicyDeps of one compiled flow: every engine rebuild compiles a new one. */
const flow = (caches: CacheResources) => ({ ...testDeps(counters), caches }) as never;
const question = () => fakeContext({ body: { temperature: 0 } });

/** Whether `policy` answers the question from its cache; on a miss, stores `answer` for it. */
async function cached(policy: Policy, answer = 'Paris'): Promise<boolean> {
  const ctx = question();
  await admit(policy, ctx, state);
  if (ctx.directResponse) return true;
  await respondJson(policy, ctx, state, chatAnswer(answer));
  return false;
}

const doc = (kind: string, name: string, spec: unknown, index: number): Manifest => ({ apiVersion: 'apim.googleapis.com/v1', kind, metadata: { name }, spec, source: 'caches.yaml', index });

function compile(caches: CacheResources, policies: [kind: string, name: string, spec: unknown][]): void {
  const manifests = [
    doc('APIMExtensionPolicy', 'ext', { targetRef: { name: 'gw' }, failOpen: false, timeout: 1000, defaultSecurityEnabled: false, faultFormat: 'openai' }, 0),
    ...policies.map(([kind, name, spec], i) => doc(kind, name, spec, i + 1)),
    doc('ApimTemplate', 't', { templates: [{ policies: policies.map(([kind, name]) => ({ kind, name })) }] }, 9),
  ];
  createPolicyEngine({ manifests, counters, identity: new MemoryIdentitySource(), caches });
}

const problemsOf = (fn: () => void): string[] => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

test('policies naming one cacheResource with different options are refused at load, naming both', () => {
  const caches = new CacheResources();
  const answers = problemsOf(() =>
    compile(caches, [
      ['ResponseCache', 'gold-answers', { cacheResource: 'shared', maxBytes: 1048576 }],
      ['ResponseCache', 'silver-answers', { cacheResource: 'shared', maxBytes: 2097152 }],
    ]),
  );
  assert.equal(answers.length, 1);
  assert.match(answers[0], /ResponseCache\/silver-answers.*cacheResource "shared".*ResponseCache\/gold-answers.*maxBytes 1048576.*maxBytes 2097152/);

  const embeddings = { url: 'http://127.0.0.1:9/v1/embeddings', model: 'e5' };
  const vectors = problemsOf(() =>
    compile(caches, [
      ['SemanticCacheLookup', 'faq', { embeddings, cacheResource: 'kb', maxEntriesPerScope: 10 }],
      ['SemanticCacheLookup', 'faq-2', { embeddings, cacheResource: 'kb', maxEntriesPerScope: 20 }],
    ]),
  );
  assert.match(vectors.join('\n'), /SemanticCacheLookup\/faq-2.*cacheResource "kb".*SemanticCacheLookup\/faq\b.*maxEntriesPerScope 10/);
  // The same options: one store, shared.
  assert.deepEqual(
    problemsOf(() =>
      compile(caches, [
        ['ResponseCache', 'gold-answers', { cacheResource: 'shared' }],
        ['ResponseCache', 'silver-answers', { cacheResource: 'shared' }],
      ]),
    ),
    [],
  );
});

test('policies sharing a resource share its entries, through every rebuild', async () => {
  const caches = new CacheResources();
  const first = flow(caches);
  const gold = responseCache('gold-answers', { cacheResource: 'shared' }, first);
  const silver = responseCache('silver-answers', { cacheResource: 'shared' }, first);
  assert.equal(await cached(gold), false);
  assert.equal(await cached(silver), true);
  const rebuilt = flow(caches);
  assert.equal(await cached(responseCache('gold-answers', { cacheResource: 'shared' }, rebuilt)), true);
  assert.equal(await cached(responseCache('silver-answers', { cacheResource: 'shared' }, rebuilt)), true);
});

test("an engine built with other options (a change being checked) leaves the serving policy's entries alone", async () => {
  const caches = new CacheResources();
  const serving = responseCache('answers', { maxBytes: 1048576 }, flow(caches));
  assert.equal(await cached(serving), false);
  responseCache('answers', { maxBytes: 2097152 }, flow(caches));
  assert.equal(await cached(serving), true);
});

test('a store no compiled policy uses any more is let go; one still used is kept', async () => {
  const caches = new CacheResources();
  const options = { maxBytes: 1048576, maxEntryBytes: 65536 };
  let deleted: Policy | undefined = responseCache('answers', options, flow(caches));
  const kept = responseCache('kept', options, flow(caches));
  await cached(deleted);
  await cached(kept);
  // The same stores the policies hold (same resource and options), seen without holding them.
  const store = (name: string) => new WeakRef(caches.answerStore({ policy: name, flow: flow(caches) }, name, 'memory', options));
  const deletedStore = store('answers');
  const keptStore = store('kept');
  deleted = undefined;
  // A WeakRef's target lives at least to the end of the task that made or read it.
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  assert.equal(deletedStore.deref(), undefined, 'the deleted policy\'s store (and its entries) was freed');
  assert.ok(keptStore.deref());
  assert.equal(await cached(responseCache('kept', options, flow(caches))), true, 'a rebuild gets the kept store back');
  assert.equal(await cached(responseCache('answers', options, flow(caches))), false, 'applied again, the deleted policy starts empty');
});

test("tollgate_cache_events_total drops a policy no compiled engine holds any more, and keeps counting the others'", async () => {
  const caches = new CacheResources();
  const registry = new Registry();
  registerCacheEvents(registry, caches);
  const options = { maxBytes: 1048576, maxEntryBytes: 65536 };
  let renamed: Policy | undefined = responseCache('answers-1', options, flow(caches));
  let kept = responseCache('kept', options, flow(caches));
  await cached(renamed);
  await cached(kept);
  const lookups = async (policy: string) => [...(await registry.metrics()).matchAll(/^tollgate_cache_events_total\{policy="([^"]+)",event="lookups"\} (\d+)$/gm)].find((m) => m[1] === policy)?.[2];
  assert.equal(await lookups('answers-1'), '1');
  assert.equal(await lookups('kept'), '1');
  // An admin apply renames one and rebuilds the engine: the old engine (and its policies) goes.
  kept = responseCache('kept', options, flow(caches));
  const renamedTo = responseCache('answers-2', options, flow(caches));
  renamed = undefined;
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  // FinalizationRegistry callbacks run in a task of their own after the collection.
  await new Promise((resolve) => setTimeout(resolve, 10));
  await cached(kept);
  await cached(renamedTo);
  const text = await registry.metrics();
  assert.doesNotMatch(text, /policy="answers-1"/, 'the renamed policy\'s series are gone');
  assert.equal(await lookups('kept'), '2', 'the rebuilt policy counts on');
  assert.equal(await lookups('answers-2'), '1');
});
