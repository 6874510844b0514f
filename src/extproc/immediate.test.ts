import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeContext } from '../policy/testing.js';
import { immediateResponse } from './immediate.js';

test("a refusal sent as an immediate response counts its body as the bytes out, as the data plane's answers do", () => {
  const ctx = fakeContext({});
  const body = JSON.stringify({ error: { message: 'No model named nope', code: 'model_not_found' } });
  const answer = immediateResponse(ctx, { status: 404, headers: { 'content-type': 'application/json' }, body }, false);
  assert.equal(answer.immediate_response?.body?.length, Buffer.byteLength(body));
  assert.equal(ctx.bytesOut, Buffer.byteLength(body));
});

test('an immediate response to a HEAD, or a 204, counts no bytes out: Envoy sends those no body', () => {
  const body = JSON.stringify({ object: 'list', data: [] });
  for (const [method, status] of [['HEAD', 200], ['OPTIONS', 204]] as const) {
    const ctx = fakeContext({ method, url: '/v1/models' });
    immediateResponse(ctx, { status, headers: { 'content-type': 'application/json' }, body }, false);
    assert.equal(ctx.bytesOut, 0, `${method} ${status}`);
  }
});
