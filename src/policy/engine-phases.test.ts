// The engine's phases over policies that use them all: only phases with work are hooked, intercept starts the
// request's state, and the response flows of several policies chain in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Manifest } from '../config/manifest.js';
import type { ResponseFlow } from '../gateway/hooks.js';
import { MemoryCounterStore } from '../store/counters/memory.js';
import { createPolicyEngine } from './engine.js';
import { MemoryIdentitySource } from './memory-identity.js';
import { PolicyRegistry } from './registry.js';
import { fakeContext } from './testing.js';
import type { Policy, PolicyFactory } from './types.js';

const doc = (kind: string, name: string, spec: unknown, index: number): Manifest => ({
  apiVersion: 'apim.googleapis.com/v1', kind, metadata: { name }, spec, source: 'test.yaml', index,
});

/** A policy that records its phases in `log` and rewrites answers by appending its name. */
function recorder(log: string[]): PolicyFactory {
  return (name, spec) => {
    const s = spec as { phases: string[]; async?: boolean };
    const has = (p: string) => s.phases.includes(p);
    const policy: Policy = { type: 'recorder', name };
    if (has('intercept')) policy.intercept = (ctx) => void log.push(`${name}:intercept:${ctx.apim ? 'state' : 'none'}`);
    if (has('admit')) policy.admit = () => void log.push(`${name}:admit`);
    if (has('respond')) {
      policy.respond = (_ctx, _state, status): ResponseFlow | undefined => {
        log.push(`${name}:respond:${status}`);
        if (status === 204) return undefined;
        return {
          headers: (_s, out) => void (out['x-chain'] = `${out['x-chain'] ?? ''}${name}`),
          body: (b) => (s.async ? Promise.resolve(Buffer.concat([b, Buffer.from(name)])) : Buffer.concat([b, Buffer.from(name)])),
          event: (d) => (d.startsWith('drop') && name === 'b' ? null : `${d}${name}`),
          end: () => void log.push(`${name}:end`),
        };
      };
    }
    return policy;
  };
}

function engineWith(policies: { name: string; phases: string[]; async?: boolean }[], log: string[]) {
  const registry = new PolicyRegistry().register('Recorder', recorder(log));
  const manifests = [
    doc('APIMExtensionPolicy', 'ext', { targetRef: { name: 'gw' }, failOpen: false, timeout: 1000, defaultSecurityEnabled: false, faultFormat: 'openai' }, 0),
    ...policies.map((p, i) => doc('Recorder', p.name, p, i + 1)),
    doc('ApimTemplate', 't', { templates: [{ policies: policies.map((p) => ({ kind: 'Recorder', name: p.name })) }] }, 9),
  ];
  return createPolicyEngine({ manifests, counters: new MemoryCounterStore(), identity: new MemoryIdentitySource(), registry });
}

test('only phases with work are hooked', () => {
  const engine = engineWith([{ name: 'a', phases: ['admit'] }], []);
  assert.equal(engine.hooks.intercept, undefined);
  assert.equal(engine.hooks.authenticate, undefined);
  assert.equal(engine.hooks.respond, undefined);
  assert.ok(engine.hooks.admit);
});

test('intercept runs first and starts the state every later phase shares', async () => {
  const log: string[] = [];
  const engine = engineWith([{ name: 'a', phases: ['intercept', 'admit'] }], log);
  const ctx = fakeContext();
  await engine.hooks.intercept!(ctx);
  const state = ctx.apim;
  await engine.hooks.admit!(ctx);
  assert.equal(ctx.apim, state);
  assert.deepEqual(log, ['a:intercept:state', 'a:admit']);
});

test('response flows chain in order: headers, body, events (null stops), end', async () => {
  const log: string[] = [];
  const engine = engineWith([{ name: 'a', phases: ['respond'] }, { name: 'b', phases: ['respond'], async: true }, { name: 'c', phases: ['respond'] }], log);
  const ctx = fakeContext();
  const flow = engine.hooks.respond!(ctx, 200)!;
  const headers: Record<string, string> = {};
  flow.headers!(200, headers);
  assert.equal(headers['x-chain'], 'abc');
  assert.equal((await flow.body!(Buffer.from('>'), 200)).toString(), '>abc');
  assert.equal(flow.event!('e'), 'eabc');
  assert.equal(flow.event!('drop'), null);
  flow.end!();
  assert.deepEqual(log, ['a:respond:200', 'b:respond:200', 'c:respond:200', 'a:end', 'b:end', 'c:end']);
});

test('a single response flow is used as it is; none gives undefined', () => {
  const log: string[] = [];
  const engine = engineWith([{ name: 'a', phases: ['respond'] }, { name: 'b', phases: ['respond'] }], log);
  assert.equal(engine.hooks.respond!(fakeContext(), 204), undefined);
  const one = engineWith([{ name: 'solo', phases: ['respond'] }], log);
  const flow = one.hooks.respond!(fakeContext(), 200)!;
  assert.equal(flow.event!('x'), 'xsolo');
});
