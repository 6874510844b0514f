import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { newContext } from './data-plane.js';
import type { GatewayError } from './errors.js';
import { mayReach, responseIdSink, storedResponseRequest, StoredResponses, type StoredResponse } from './stored-responses.js';
import type { RequestContext } from './context.js';

const held = (address: string, owner?: string): StoredResponse => ({ address, model: 'm', owner });

describe('storedResponseRequest', () => {
  const cases: [string, string, ReturnType<typeof storedResponseRequest>][] = [
    ['GET', '/v1/responses/resp_1', { id: 'resp_1', action: 'retrieve' }],
    ['HEAD', '/v1/responses/resp_1', { id: 'resp_1', action: 'retrieve' }],
    ['DELETE', '/v1/responses/resp_1', { id: 'resp_1', action: 'delete' }],
    ['POST', '/v1/responses/resp_1/cancel', { id: 'resp_1', action: 'cancel' }],
    ['GET', '/v1/responses/resp_1/input_items', { id: 'resp_1', action: 'input_items' }],
    // As the model server reads it: an escaped id or sub-resource is the same resource, checked the same.
    ['GET', '/v1/responses/resp%5F1', { id: 'resp_1', action: 'retrieve' }],
    ['POST', '/v1/responses/resp_1/%63ancel', { id: 'resp_1', action: 'cancel' }],
    ['GET', '/v1/responses', undefined],
    ['GET', '/v1/chat/completions', undefined],
    // OpenAI's operations below /v1/responses/, no ids: a route takes them as any path (before: a 405 naming GET, HEAD, DELETE).
    ['POST', '/v1/responses/input_tokens', undefined],
    ['POST', '/v1/responses/compact', undefined],
    ['POST', '/v1/responses/input%5Ftokens', undefined],
  ];
  for (const [method, path, want] of cases) test(`${method} ${path}`, () => assert.deepEqual(storedResponseRequest(method, path), want));

  const code = (err: unknown) => (err as GatewayError).code;
  test('a path below /v1/responses/ that names no stored response is 404, never passed on', () => {
    for (const path of ['/v1/responses/compact/cancel', '/v1/responses/input_tokens/input_items', '/v1/responses/resp_1/other', '/v1/responses/resp%2F1', '/v1/responses/%E0%A4%A', `/v1/responses/${'a'.repeat(129)}`, '/v1/responses/', '/v1/responses/resp_1/']) {
      assert.throws(() => storedResponseRequest('GET', path), (e) => code(e) === 'route_not_found', path);
    }
  });

  test('another method is 405 naming the ones its resource takes', () => {
    const allow = (method: string, path: string) => {
      try {
        storedResponseRequest(method, path);
      } catch (err) {
        assert.equal(code(err), 'method_not_allowed');
        return (err as GatewayError).headers.allow;
      }
      assert.fail('expected a 405');
    };
    assert.equal(allow('POST', '/v1/responses/resp_1'), 'GET, HEAD, DELETE');
    assert.equal(allow('GET', '/v1/responses/resp_1/cancel'), 'POST');
    assert.equal(allow('DELETE', '/v1/responses/resp_1/input_items'), 'GET, HEAD');
  });
});

describe('StoredResponses', () => {
  test('the least recently used is forgotten first; a lookup makes an entry recent', () => {
    const s = new StoredResponses();
    s.remember('a', held('h:1'), 2);
    s.remember('b', held('h:2'), 2);
    assert.equal(s.get('a')?.address, 'h:1');
    s.remember('c', held('h:3'), 2);
    assert.equal(s.get('b'), undefined, 'b was the least recently used');
    assert.equal(s.get('a')?.address, 'h:1');
    assert.equal(s.get('c')?.address, 'h:3');
  });

  test('a lowered limit is reached over the next insertions; 0 remembers nothing', () => {
    const s = new StoredResponses();
    for (let i = 0; i < 100; i++) s.remember(`r${i}`, held('h:1'), 100);
    s.remember('x', held('h:1'), 10);
    assert.equal(s.size, 101 - 16);
    for (let i = 0; i < 10; i++) s.remember(`y${i}`, held('h:1'), 10);
    assert.equal(s.size, 10);
    assert.equal(s.get('y9')?.address, 'h:1');
    const none = new StoredResponses();
    none.remember('a', held('h:1'), 0);
    assert.equal(none.size, 0);
    // Turned off on reload: what was held goes too, over the next creations.
    s.remember('z', held('h:1'), 0);
    assert.equal(s.size, 0);
  });

  test('forget', () => {
    const s = new StoredResponses();
    s.remember('a', held('h:1'), 10);
    s.forget('a');
    assert.equal(s.get('a'), undefined);
  });
});

function ctxOf(app?: string, fields: Partial<RequestContext> = {}): RequestContext {
  const ctx = Object.assign(newContext('POST', '/v1/responses', {}, '127.0.0.1'), fields);
  if (app !== undefined) ctx.apim = { key: { appId: app } } as RequestContext['apim'];
  return ctx;
}

test('mayReach: an owned response is its app only; one made without keys is anyone holding its id', () => {
  assert.equal(mayReach(held('h:1', 'app:A'), ctxOf('A')), true);
  assert.equal(mayReach(held('h:1', 'app:A'), ctxOf('B')), false);
  assert.equal(mayReach(held('h:1', 'app:A'), ctxOf()), false);
  assert.equal(mayReach(held('h:1'), ctxOf('B')), true);
});

test('responseIdSink: only a successful, stored Responses creation', () => {
  const responses = () => ctxOf(undefined, { operation: 'responses', body: { model: 'm' } });
  const ctx = responses();
  responseIdSink(ctx, 200)!('resp_1');
  assert.equal(ctx.responseId, 'resp_1');
  assert.equal(responseIdSink(responses(), 404), undefined);
  assert.equal(responseIdSink(ctxOf(undefined, { operation: 'responses', body: { model: 'm', store: false } }), 200), undefined);
  assert.equal(responseIdSink(ctxOf(undefined, { operation: 'chat.completions', body: { model: 'm' } }), 200), undefined);
  assert.ok(responseIdSink(ctxOf(undefined, { operation: 'responses', body: { model: 'm', store: true } }), 200));
});
