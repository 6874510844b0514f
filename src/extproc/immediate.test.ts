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
