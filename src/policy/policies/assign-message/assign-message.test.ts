// AssignMessage: config errors; request headers, query and JSON fields with variables, header changes read by later
// policies, fields set over a client's non-object; the answer's headers and JSON body; unresolved variables fault unless
// ignored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { OutgoingHttpHeaders } from 'node:http';
import type { GatewayError } from '../../../gateway/errors.js';
import { MemoryCounterStore } from '../../../store/counters/memory.js';
import { fakeContext, testDeps } from '../../testing.js';
import type { ApimState } from '../../types.js';
import { compileCondition } from '../../condition.js';
import { compileVariable, setVariable } from '../../variables.js';
import { ASSIGN_MESSAGE_FAULTS, assignMessage } from './assign-message.js';

const deps = testDeps(new MemoryCounterStore());
const make = (spec: unknown) => assignMessage('am', spec, deps);

const configErrors: [name: string, spec: unknown, message: RegExp][] = [
  ['an unknown variable', { set: { headers: [{ name: 'x-t', value: '{tenant}' }] } }, /unknown variable "tenant"/],
  ['a bad header name', { set: { headers: [{ name: 'bad header', value: 'v' }] } }, /must be an HTTP header name/],
  ['a prototype path', { set: { jsonFields: [{ path: 'a.__proto__.b', value: 1 }] } }, /must not name __proto__/],
  ['query parameters on a response', { assignTo: 'response', set: { queryParams: [{ name: 'q', value: 'v' }] } }, /query parameters belong to requests/],
  ['an unknown field', { sett: {} }, /Unrecognized key/],
  // A content-length that lies made the rest of a kept-alive answer read as the next one; upgrade or expect upstream
  // broke the exchange and blamed the client or the model server.
  ['setting content-length on the answer', { assignTo: 'response', set: { headers: [{ name: 'Content-Length', value: '5' }] } }, /frames the message/],
  ['setting transfer-encoding', { set: { headers: [{ name: 'transfer-encoding', value: 'chunked' }] } }, /frames the message/],
  ['setting expect', { set: { headers: [{ name: 'expect', value: '100-continue' }] } }, /frames the message/],
  ['removing connection', { remove: { headers: [{ name: 'connection' }] } }, /frames the message/],
];
for (const [name, spec, message] of configErrors) test(`config: ${name} is refused`, () => assert.throws(() => make(spec), message));

test('on the request: headers, query parameters and JSON fields, removed then set, with variables', () => {
  const policy = make({
    remove: { headers: [{ name: 'X-Debug' }], queryParams: [{ name: 'trace' }], jsonFields: [{ path: 'user' }] },
    set: {
      headers: [{ name: 'X-Tenant', value: 'tenant-{request.header.x-org}' }, { name: 'authorization', value: 'Bearer {kvm.token}' }],
      queryParams: [{ name: 'api-version', value: '2024-10-01' }],
      jsonFields: [{ path: 'metadata.app', value: '{developer.app.name}' }, { path: 'max_tokens', value: 64 }, { path: 'model', value: '{model}' }],
    },
  });
  const ctx = fakeContext({ url: '/v1/chat/completions?trace=1&keep=yes', headers: { 'x-org': 'acme' }, body: { user: 'u1' } });
  const state: ApimState = { key: { appName: 'chatbot' } as ApimState['key'] };
  setVariable(state, 'kvm.token', 'secret');
  policy.admit!(ctx, state);
  assert.deepEqual(ctx.upstreamHeaders, { 'x-debug': null, 'x-tenant': 'tenant-acme', authorization: 'Bearer secret' });
  assert.equal(ctx.url, '/v1/chat/completions?keep=yes&api-version=2024-10-01');
  assert.equal(ctx.bodyChanged, true);
  const body = ctx.body as unknown as Record<string, unknown>;
  assert.equal(body.user, undefined);
  assert.deepEqual(body.metadata, { app: 'chatbot' });
  assert.equal(body.max_tokens, 64);
  assert.equal(body.model, 'llama');
});

test('later policies read the request as changed: request.header.* variables, conditions and the headers sent upstream agree', () => {
  // A client-chosen x-user is overwritten with the caller's identity; a spike arrest, a KVM key or a condition read
  // after it must key on that, not on the client's value.
  const policy = make({ remove: { headers: [{ name: 'x-debug' }] }, set: { headers: [{ name: 'X-User', value: '{developer.email}' }] } });
  const ctx = fakeContext({ headers: { 'x-user': 'spoof-1', 'x-debug': 'on' } });
  policy.admit!(ctx, { key: { developerEmail: 'dev@example.com' } as ApimState['key'] });
  assert.equal(compileVariable('request.header.x-user')(ctx, {}), 'dev@example.com');
  assert.equal(compileVariable('request.header.x-debug')(ctx, {}), undefined);
  assert.equal(compileCondition("request.headers['x-user'] == 'dev@example.com' && !('x-debug' in request.headers)").test(ctx, {}), true);
  assert.deepEqual(ctx.upstreamHeaders, { 'x-debug': null, 'x-user': 'dev@example.com' });
});

test('a header removed by the policy can still be copied into another by it (values render before any change)', () => {
  const ctx = fakeContext({ headers: { 'x-raw-user': 'alice' } });
  make({ remove: { headers: [{ name: 'x-raw-user' }] }, set: { headers: [{ name: 'x-user', value: 'u-{request.header.x-raw-user}' }] } }).admit!(ctx, {});
  assert.equal(ctx.headers['x-user'], 'u-alice');
  assert.equal(ctx.headers['x-raw-user'], undefined);
  assert.deepEqual(ctx.upstreamHeaders, { 'x-raw-user': null, 'x-user': 'u-alice' });
});

test('a JSON field is set even where the client put a non-object on its path', () => {
  const policy = make({ set: { jsonFields: [{ path: 'metadata.app', value: '{developer.app.name}' }] } });
  for (const metadata of ['x', ['x'], 7, null]) {
    const ctx = fakeContext({ body: { metadata } as never });
    policy.admit!(ctx, { key: { appName: 'chatbot' } as ApimState['key'] });
    assert.deepEqual((ctx.body as unknown as Record<string, unknown>).metadata, { app: 'chatbot' }, `metadata: ${JSON.stringify(metadata)}`);
  }
});

test('an unresolved variable faults with UnresolvedVariable, or renders empty when ignored', () => {
  const spec = { set: { headers: [{ name: 'x-org', value: 'org-{request.header.x-org}' }] } };
  assert.throws(
    () => make(spec).admit!(fakeContext(), {}),
    (err: GatewayError) => err.status === 500 && err.code === ASSIGN_MESSAGE_FAULTS.unresolvedVariable && /request.header.x-org/.test(err.message),
  );
  const ctx = fakeContext();
  make({ ...spec, ignoreUnresolvedVariables: true }).admit!(ctx, {});
  assert.equal(ctx.upstreamHeaders!['x-org'], 'org-');
});

test('on the response: headers always, JSON fields of successful JSON answers only', async () => {
  const policy = make({
    assignTo: 'response',
    remove: { headers: [{ name: 'server' }], jsonFields: [{ path: 'system_fingerprint' }] },
    set: { headers: [{ name: 'x-served-model', value: '{model}' }], jsonFields: [{ path: 'tollgate.app', value: '{developer.app.name}' }] },
  });
  assert.equal(policy.admit, undefined);
  const ctx = fakeContext();
  const flow = policy.respond!(ctx, { key: { appName: 'chatbot' } as ApimState['key'] }, 200)!;
  const headers: OutgoingHttpHeaders = { server: 'vllm', 'content-type': 'application/json' };
  flow.headers!(200, headers);
  assert.deepEqual(headers, { 'content-type': 'application/json', 'x-served-model': 'llama' });
  const out = JSON.parse((await flow.body!(Buffer.from('{"id":"c1","system_fingerprint":"fp"}'), 200)).toString());
  assert.deepEqual(out, { id: 'c1', tollgate: { app: 'chatbot' } });
  assert.equal((await flow.body!(Buffer.from('not json'), 200)).toString(), 'not json');
  assert.equal(policy.respond!(ctx, {}, 500)!.body, undefined);
});

test("what a response rewrite tells the caches: headers only, the key's variables (one app's), the request's (one request's)", () => {
  const answer = (value: unknown) => make({ assignTo: 'response', set: { jsonFields: [{ path: 'tollgate.tag', value }] } }).answerEdits;
  assert.equal(make({ assignTo: 'response', set: { headers: [{ name: 'x-user', value: '{request.header.x-user}' }] } }).answerEdits, 'none');
  assert.equal(answer('fixed'), undefined, 'a literal is the same for everyone');
  assert.equal(answer('{developer.email} on {apiproduct.name}'), 'perApp');
  assert.equal(answer('{developer.email} for {request.header.x-user}'), 'perRequest');
  assert.equal(answer('{client.ip}'), 'perRequest');
});
