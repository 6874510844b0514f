import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clientIp, subsetHint } from './request-metadata.js';
import { toStruct } from './struct.js';

const hint = (v: Parameters<typeof toStruct>[0][string]) => ({ metadata_context: { filter_metadata: { 'envoy.lb.subset_hint': toStruct({ 'x-gateway-destination-endpoint-subset': v }) } } });

test('subset hint: a list, a comma-separated string, empty, or absent', () => {
  assert.deepEqual(subsetHint(hint(['10.0.0.1:8000', ' 10.0.0.2:8000 '])), new Set(['10.0.0.1:8000', '10.0.0.2:8000']));
  assert.deepEqual(subsetHint(hint('10.0.0.1:8000,10.0.0.3:8000')), new Set(['10.0.0.1:8000', '10.0.0.3:8000']));
  assert.deepEqual(subsetHint(hint([])), new Set());
  assert.equal(subsetHint({}), undefined);
});

test('client address: Envoy\'s external address, else the hop it appended to x-forwarded-for', () => {
  assert.equal(clientIp({ 'x-envoy-external-address': '203.0.113.9', 'x-forwarded-for': '10.0.0.1' }), '203.0.113.9');
  assert.equal(clientIp({ 'x-forwarded-for': '198.51.100.1, 203.0.113.7' }), '203.0.113.7');
  assert.equal(clientIp({}), undefined);
});
