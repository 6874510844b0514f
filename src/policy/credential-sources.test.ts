import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manifestOf } from '../config/manifest.js';
import { credentialSources } from './credential-sources.js';

test('the headers and query parameters the configured credential policies read, named as the policies read them', () => {
  const sources = credentialSources([
    manifestOf('VerifyAPIKey', 'default', {}, 'test'),
    manifestOf('VerifyAPIKey', 'in-header', { apiKey: { ref: 'request.header.X-Key' } }, 'test'),
    manifestOf('VerifyAPIKey', 'in-query', { apiKey: { ref: 'request.queryparam.ApiKey' } }, 'test'),
    manifestOf('VerifyAPIKey', 'from-kvm', { apiKey: { ref: 'kvm.key' } }, 'test'),
    manifestOf('VerifyJWT', 'jwt', { algorithms: ['HS256'], secretKey: { env: 'S' }, source: { ref: 'request.header.x-jwt' } }, 'test'),
    manifestOf('SpikeArrest', 'not-a-credential', { rate: '10ps', identifier: { ref: 'request.header.x-tenant' } }, 'test'),
  ]);
  assert.deepEqual([...sources.headers].sort(), ['x-jwt', 'x-key']);
  assert.deepEqual([...sources.query], ['ApiKey']);
});
