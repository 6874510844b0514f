import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { GatewayError, TG_ERRORS, gatewayError, policyFault } from './errors.js';

test('every tollgate error code is in the README error table with its status and type', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  for (const def of Object.values(TG_ERRORS)) {
    const row = new RegExp(`\\|\\s*${def.status}\\s*\\|\\s*\`${def.code}\`\\s*\\|\\s*\`${def.type}\`\\s*\\|`);
    assert.match(readme, row, `README has no row for ${def.status} ${def.code} ${def.type}`);
  }
});

test('both error shapes', () => {
  const err = gatewayError('TG_ERR_MODEL_NOT_FOUND', 'The model "x" does not exist');
  assert.deepEqual(JSON.parse(err.toResponse('openai').body), { error: { message: 'The model "x" does not exist', type: 'invalid_request_error', code: 'model_not_found' } });
  const fault = policyFault(429, 'policies.ratelimit.QuotaViolation', 'Rate limit quota violation', { 'retry-after': '3' });
  const r = fault.toResponse('apigee');
  assert.equal(r.status, 429);
  assert.equal(r.headers['retry-after'], '3');
  // Apigee's shape, with OpenAI's beside it for the OpenAI SDKs (they read only `error`).
  assert.deepEqual(JSON.parse(r.body), {
    fault: { faultstring: 'Rate limit quota violation', detail: { errorcode: 'policies.ratelimit.QuotaViolation' } },
    error: { message: 'Rate limit quota violation', type: 'rate_limit_error', code: 'policies.ratelimit.QuotaViolation' },
  });
  assert.ok(fault instanceof GatewayError);
  assert.equal(fault.type, 'rate_limit_error');
});
