// EndpointPickerConfigs are one per pool, plus at most one without a poolRef: a second is a configuration error naming
// both documents, as a second GatewaySettings is, not a profile silently ignored.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, manifestOf, type Manifest } from '../src/config/manifest.js';
import { compileConfig } from '../src/config/runtime-config.js';

const m = (kind: string, name: string, spec: unknown, source = 'pickers.yaml') => manifestOf(kind, name, spec, source);
const base = [m('InferencePool', 'pool', { endpoints: ['http://127.0.0.1:8000'] }), m('InferencePool', 'other', { endpoints: ['http://127.0.0.1:8001'] })];
const profile = (scorer: string) => ({ plugins: [{ type: scorer }] });

function problems(manifests: Manifest[]): string[] {
  try {
    compileConfig(manifests);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems;
  }
}

describe('EndpointPickerConfig per pool', () => {
  test('one per pool and one without a poolRef compile, each pool with its own', () => {
    const config = compileConfig([
      ...base,
      m('EndpointPickerConfig', 'for-pool', { ...profile('prefix-cache-scorer'), poolRef: { name: 'pool' } }),
      m('EndpointPickerConfig', 'everyone-else', profile('queue-scorer')),
    ]);
    assert.equal(config.pools.get('pool')!.picker!.plugins[0].type, 'prefix-cache-scorer');
    assert.equal(config.pools.get('other')!.picker!.plugins[0].type, 'queue-scorer');
  });

  test('two for one pool are refused, naming both documents', () => {
    const found = problems([
      ...base,
      m('EndpointPickerConfig', 'first', { ...profile('queue-scorer'), poolRef: { name: 'pool' } }, 'a.yaml'),
      m('EndpointPickerConfig', 'second', { ...profile('prefix-cache-scorer'), poolRef: { name: 'pool' } }, 'b.yaml'),
    ]);
    assert.deepEqual(found, [
      'b.yaml document 0 (EndpointPickerConfig/second): spec.poolRef.name: pool "pool" already has an EndpointPickerConfig (a.yaml document 0 (EndpointPickerConfig/first))',
    ]);
  });

  test('two without a poolRef are refused, naming both documents', () => {
    const found = problems([...base, m('EndpointPickerConfig', 'first', profile('queue-scorer'), 'a.yaml'), m('EndpointPickerConfig', 'second', profile('prefix-cache-scorer'), 'b.yaml')]);
    assert.deepEqual(found, [
      'b.yaml document 0 (EndpointPickerConfig/second): spec.poolRef: only one EndpointPickerConfig without a poolRef may exist (also a.yaml document 0 (EndpointPickerConfig/first))',
    ]);
  });
});
