import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readPreviousAdminTokens } from './admin-token.js';

test('TOLLGATE_ADMIN_TOKEN_PREVIOUS: comma-separated tokens beside a current one, each sendable as a bearer token', () => {
  assert.deepEqual(readPreviousAdminTokens({}), { tokens: [] });
  assert.deepEqual(readPreviousAdminTokens({ TOLLGATE_ADMIN_TOKEN: 'new', TOLLGATE_ADMIN_TOKEN_PREVIOUS: ' old , older,\n' }), { tokens: ['old', 'older'] });
  assert.match(readPreviousAdminTokens({ TOLLGATE_ADMIN_TOKEN_PREVIOUS: 'old' }).problem!, /without TOLLGATE_ADMIN_TOKEN/);
  const bad = readPreviousAdminTokens({ TOLLGATE_ADMIN_TOKEN: 'new', TOLLGATE_ADMIN_TOKEN_PREVIOUS: 'ok,has space' });
  assert.match(bad.problem!, /visible ASCII/);
  assert.ok(!bad.problem!.includes('has space'), 'the token is never shown');
});
