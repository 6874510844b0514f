import { test } from 'node:test';
import assert from 'node:assert/strict';
import { extensionChainSpec } from './extension-kind.js';

test('an ExtensionChain: defaults, durations, and the mistakes it refuses', () => {
  const ok = extensionChainSpec.parse({ extensions: [{ name: 'apigee', address: 'apigee.internal:443', supportedEvents: ['RequestHeaders', 'RequestBody'], timeout: '500ms' }] });
  assert.deepEqual(ok.extensions[0], {
    name: 'apigee',
    address: 'apigee.internal:443',
    supportedEvents: ['RequestHeaders', 'RequestBody'],
    requestBodySendMode: 'BUFFERED',
    responseBodySendMode: 'BUFFERED',
    timeout: 500,
    failOpen: false,
  });
  const bad = (ext: object) => !extensionChainSpec.safeParse({ extensions: [{ name: 'e', address: '10.0.0.1:9002', supportedEvents: ['RequestHeaders'], ...ext }] }).success;
  assert.ok(bad({ address: 'no-port' }));
  assert.ok(bad({ timeout: '20s' }));
  assert.ok(bad({ supportedEvents: ['RequestTrailers'] }));
  assert.ok(bad({ tls: { cert: 'c.pem' } }), 'cert without key');
  assert.ok(bad({ unknown: true }));
  assert.ok(!extensionChainSpec.safeParse({ extensions: [] }).success);
  const twice = { name: 'e', address: '[::1]:9002', supportedEvents: ['RequestHeaders'] };
  assert.ok(!extensionChainSpec.safeParse({ extensions: [twice, twice] }).success, 'names are unique');
});
