// On ext_proc as on the HTTP data plane, a policy's Vary (CORS: Origin) is added to the model server's, not put in
// its place: a shared cache must vary on both (Accept-Encoding: a compressed answer passes through as it came).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeContext } from '../policy/testing.js';
import { ResponsePhase } from './response-phase.js';

test("a policy's Vary is added to the model server's", () => {
  const ctx = fakeContext();
  ctx.responseHeaders.vary = 'Origin';
  const phase = new ResponsePhase(ctx, 200, { 'content-type': 'application/json', vary: 'Accept-Encoding' }, false, 1 << 20, undefined);
  const vary = phase.headerMutation?.set_headers?.find((h) => h.header?.key === 'vary');
  assert.equal(vary?.header?.value, 'Accept-Encoding, Origin');
  const alone = new ResponsePhase(ctx, 200, { 'content-type': 'application/json' }, false, 1 << 20, undefined);
  assert.equal(alone.headerMutation?.set_headers?.find((h) => h.header?.key === 'vary')?.header?.value, 'Origin');
});
