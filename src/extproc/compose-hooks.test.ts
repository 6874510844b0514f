import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RequestContext } from '../gateway/context.js';
import type { GatewayHooks } from '../gateway/hooks.js';
import { newContext } from '../gateway/data-plane.js';
import { composeHooks } from './compose-hooks.js';

function layer(name: string, log: string[], opts: { async?: boolean; answers?: boolean } = {}): GatewayHooks {
  return {
    authenticate: (ctx: RequestContext) => {
      log.push(`${name}.authenticate`);
      if (opts.answers) ctx.directResponse = { status: 204, headers: {}, body: '' };
      return opts.async ? Promise.resolve() : undefined;
    },
    respond: () => ({
      headers: (_s, h) => {
        log.push(`${name}.headers:${String(h.seen ?? '')}`);
        h.seen = name;
      },
    }),
    complete: () => void log.push(`${name}.complete`),
  };
}

test('the first layer sees the request first and the answer last, like the first filter of an Envoy chain', async () => {
  const log: string[] = [];
  const hooks = composeHooks(layer('outer', log, { async: true }), {}, layer('inner', log));
  const ctx = newContext('POST', '/v1/chat/completions', {}, undefined);
  await hooks.authenticate!(ctx);
  hooks.respond!(ctx, 200)!.headers!(200, {});
  hooks.complete!(ctx);
  assert.deepEqual(log, ['outer.authenticate', 'inner.authenticate', 'inner.headers:', 'outer.headers:inner', 'outer.complete', 'inner.complete']);
});

test('a layer that answers stops the ones after it', async () => {
  const log: string[] = [];
  const hooks = composeHooks(layer('a', log, { async: true, answers: true }), layer('b', log));
  await hooks.authenticate!(newContext('GET', '/', {}, undefined));
  assert.deepEqual(log, ['a.authenticate']);
});

test('one layer stays itself; none is empty', () => {
  const only = layer('only', []);
  assert.equal(composeHooks({}, only), only);
  assert.deepEqual(composeHooks({}, {}), {});
});
