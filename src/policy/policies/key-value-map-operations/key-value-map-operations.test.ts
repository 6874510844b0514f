// KeyValueMapOperations: config errors, gets into flow variables (environment and product scope), puts with and
// without override, and the fault when a write cannot be stored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GatewayError } from '../../../gateway/errors.js';
import { MemoryCounterStore } from '../../../store/counters/memory.js';
import { fakeContext, testDeps } from '../../testing.js';
import type { ApimState, KvmLookup } from '../../types.js';
import { compileVariable } from '../../variables.js';
import { KEY_VALUE_MAP_OPERATIONS_FAULTS, keyValueMapOperations } from './key-value-map-operations.js';

class MemoryKvm implements KvmLookup {
  readonly values = new Map<string, string>();
  readonly unreadable = new Set<string>();
  failing = false;
  get(scope: string, map: string, key: string): string | undefined {
    if (this.unreadable.has(`${scope}/${map}/${key}`)) throw new Error('the entry is encrypted under another key');
    return this.values.get(`${scope}/${map}/${key}`);
  }
  async put(scope: string, map: string, key: string, value: string, override: boolean): Promise<void> {
    if (this.failing) throw new Error('database is down');
    const id = `${scope}/${map}/${key}`;
    if (override || !this.values.has(id)) this.values.set(id, value);
  }
}

function setup() {
  const kvm = new MemoryKvm();
  const deps = { ...testDeps(new MemoryCounterStore()), kvm };
  return { kvm, make: (spec: Record<string, unknown>) => keyValueMapOperations('kvm-op', { mapIdentifier: 'tiers', ...spec }, deps) };
}

const gold: ApimState = { product: { name: 'gold', status: 'approved', operationSets: [] }, key: { appName: 'chatbot' } as ApimState['key'] };

const configErrors: [spec: Record<string, unknown>, message: RegExp][] = [
  [{}, /give at least one get or put/],
  [{ get: [{ assignTo: 'tier', key: 'k' }] }, /get\[0\].assignTo: "tier" must be a dotted flow variable name/],
  [{ get: [{ assignTo: 'request.tier', key: 'k' }] }, /must be a dotted flow variable name/],
  [{ get: [{ assignTo: 'kvm.t', key: '{nope}' }] }, /unknown variable "nope"/],
  [{ scope: 'organization', get: [{ assignTo: 'kvm.t', key: 'k' }] }, /scope/],
];
for (const [spec, message] of configErrors) test(`config: ${JSON.stringify(spec)} is refused`, () => assert.throws(() => setup().make(spec), message));

test('without a store the policy cannot be configured', () => {
  assert.throws(() => keyValueMapOperations('k', { mapIdentifier: 'm', get: [{ assignTo: 'kvm.t', key: 'k' }] }, testDeps(new MemoryCounterStore())), /need the API-management store/);
});

test('get reads into a flow variable that later policies read by name; a missing key gets the default', () => {
  const { kvm, make } = setup();
  kvm.values.set('environment/tiers/chatbot', 'premium');
  const policy = make({ get: [{ assignTo: 'kvm.tier', key: '{developer.app.name}' }, { assignTo: 'kvm.region', key: 'region', defaultValue: 'eu' }] });
  const state: ApimState = { ...gold };
  assert.equal(policy.admit!(fakeContext(), state), undefined, 'reads finish synchronously');
  assert.equal(compileVariable('kvm.tier')(fakeContext(), state), 'premium');
  assert.equal(state.vars!.get('kvm.region'), 'eu');
});

test('product scope reads the entitled product\'s entries, and nothing before entitlement', () => {
  const { kvm, make } = setup();
  kvm.values.set('apiproduct:gold/tiers/limit', '100');
  kvm.values.set('environment/tiers/limit', '5');
  const policy = make({ scope: 'apiproduct', get: [{ assignTo: 'kvm.limit', key: 'limit' }] });
  const state: ApimState = { ...gold };
  policy.admit!(fakeContext(), state);
  assert.equal(state.vars!.get('kvm.limit'), '100');
  const anonymous: ApimState = {};
  policy.admit!(fakeContext(), anonymous);
  assert.equal(anonymous.vars, undefined);
});

test('product scope with no entitled product gives each get its default, as for a missing key; puts store nothing', async () => {
  const { kvm, make } = setup();
  const policy = make({ scope: 'apiproduct', get: [{ assignTo: 'kvm.tier', key: 'tier', defaultValue: 'free' }], put: [{ key: 'seen', value: 'yes' }] });
  const anonymous: ApimState = {};
  await policy.admit!(fakeContext(), anonymous);
  assert.equal(anonymous.vars?.get('kvm.tier'), 'free');
  assert.equal(kvm.values.size, 0);
});

test('put writes rendered keys and values; override: false keeps an existing value', async () => {
  const { kvm, make } = setup();
  kvm.values.set('environment/tiers/first-seen:chatbot', 'old');
  const policy = make({
    put: [
      { key: 'last-model:{developer.app.name}', value: '{model}' },
      { key: 'first-seen:{developer.app.name}', value: 'new', override: false },
    ],
  });
  await policy.admit!(fakeContext(), { ...gold });
  assert.equal(kvm.values.get('environment/tiers/last-model:chatbot'), 'llama');
  assert.equal(kvm.values.get('environment/tiers/first-seen:chatbot'), 'old');
});

test('an entry that exists but cannot be read faults with SetVariableFailed rather than take its default', () => {
  const { kvm, make } = setup();
  kvm.unreadable.add('environment/tiers/secret');
  const policy = make({ get: [{ assignTo: 'kvm.secret', key: 'secret', defaultValue: 'none' }] });
  assert.throws(
    () => policy.admit!(fakeContext(), { ...gold }),
    (err: GatewayError) => err.status === 500 && err.code === KEY_VALUE_MAP_OPERATIONS_FAULTS.setVariableFailed && /tiers\/secret.*another key/.test(err.message),
  );
});

test('a write the store refuses faults with SetVariableFailed', async () => {
  const { kvm, make } = setup();
  kvm.failing = true;
  await assert.rejects(
    Promise.resolve(make({ put: [{ key: 'k', value: 'v' }] }).admit!(fakeContext(), { ...gold })),
    (err: GatewayError) => err.status === 500 && err.code === KEY_VALUE_MAP_OPERATIONS_FAULTS.setVariableFailed && /database is down/.test(err.message),
  );
});

test('a key or value the admin API could not manage again (a NUL from the request) is refused: 400 SetVariableFailed, nothing stored', async () => {
  const { kvm, make } = setup();
  const policy = make({ put: [{ key: 'note:{request.header.x-note}', value: 'v' }] });
  await assert.rejects(
    Promise.resolve(policy.admit!(fakeContext({ headers: { 'x-note': 'a\u0000b' } }), { ...gold })),
    (err: GatewayError) => err.status === 400 && err.code === KEY_VALUE_MAP_OPERATIONS_FAULTS.setVariableFailed && /NUL/.test(err.message),
  );
  assert.equal(kvm.values.size, 0);
});

test('a put key the admin API could never address, or whose variable is unresolved, is refused: 400 SetVariableFailed, nothing stored', async () => {
  const { kvm, make } = setup();
  const policy = make({ put: [{ key: '{request.header.x-user}', value: '{model}' }] });
  // Before: each was stored, and the admin API then refused to read, change or delete it (400, or 405 for "").
  for (const [user, why] of [
    ['..', /its key is "\.\."/],
    ['.', /its key is "\."/],
    ['a\\b', /backslash/],
    ['u'.repeat(513), /longer than 512/],
    [undefined, /request\.header\.x-user is unresolved/],
  ] as const) {
    await assert.rejects(
      Promise.resolve(policy.admit!(fakeContext({ headers: user === undefined ? {} : { 'x-user': user } }), { ...gold })),
      (err: GatewayError) => err.status === 400 && err.code === KEY_VALUE_MAP_OPERATIONS_FAULTS.setVariableFailed && why.test(err.message),
      String(user),
    );
  }
  assert.equal(kvm.values.size, 0);
  // Keys the admin API addresses are stored as before: dots, slashes and 512 characters.
  for (const user of ['a.b', 'a/b', 'u'.repeat(512)]) await policy.admit!(fakeContext({ headers: { 'x-user': user } }), { ...gold });
  assert.equal(kvm.values.size, 3);
});

test('a put value over 10 KiB (UTF-8) is refused: 400 SetVariableFailed, nothing stored', async () => {
  const { kvm, make } = setup();
  const policy = make({ put: [{ key: 'note', value: '{request.header.x-note}' }] });
  // Before: a header (or a callout's answer, up to 1 MiB) went in whole, into every replica's memory.
  for (const note of ['x'.repeat(10 * 1024 + 1), '\u00e9'.repeat(5 * 1024 + 1)]) {
    await assert.rejects(
      Promise.resolve(policy.admit!(fakeContext({ headers: { 'x-note': note } }), { ...gold })),
      (err: GatewayError) => err.status === 400 && err.code === KEY_VALUE_MAP_OPERATIONS_FAULTS.setVariableFailed && /value is longer than 10240 bytes/.test(err.message),
    );
  }
  assert.equal(kvm.values.size, 0);
  await policy.admit!(fakeContext({ headers: { 'x-note': 'x'.repeat(10 * 1024) } }), { ...gold });
  assert.equal(kvm.values.get('environment/tiers/note')?.length, 10 * 1024);
});
