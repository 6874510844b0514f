import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromStruct, metadataValue, toStruct } from './struct.js';
import { extProcService } from './protos.js';

test('Struct round trip, through the wire format too', () => {
  const value = { 'envoy.lb': { 'x-gateway-destination-endpoint': '10.0.0.1:8000,10.0.0.2:8000', n: 2, ok: true, list: ['a', 'b'], none: null } };
  assert.deepEqual(fromStruct(toStruct(value)), value);
  const process = extProcService().Process;
  const wire = process.responseDeserialize(process.responseSerialize({ request_body: {}, dynamic_metadata: toStruct(value) })) as { dynamic_metadata: never };
  assert.deepEqual(fromStruct(wire.dynamic_metadata), value);
});

test('metadataValue reads one key of one namespace', () => {
  const meta = { 'envoy.lb.subset_hint': toStruct({ 'x-gateway-destination-endpoint-subset': ['10.0.0.1:8000'] }) };
  assert.deepEqual(metadataValue(meta, 'envoy.lb.subset_hint', 'x-gateway-destination-endpoint-subset'), ['10.0.0.1:8000']);
  assert.equal(metadataValue(meta, 'envoy.lb', 'x'), undefined);
  assert.equal(metadataValue(undefined, 'envoy.lb', 'x'), undefined);
});
