// Operation sets: Apigee resource-path patterns, methods, models, and the product index built from apiProductRefs.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { compileOperationSet, compilePath, operationSetsByProduct } from './operation-set.js';

describe('compilePath', () => {
  const cases: [pattern: string, path: string, matches: boolean][] = [
    ['/', '/v1/chat/completions', true],
    ['/**', '/anything/at/all', true],
    ['/v1/chat/completions', '/v1/chat/completions', true],
    ['/v1/chat/completions', '/v1/chat/completions/x', false],
    ['/v1/**', '/v1', true],
    ['/v1/**', '/v1/embeddings', true],
    ['/v1/**', '/v1/a/b/c', true],
    ['/v1/**', '/v2/embeddings', false],
    ['/v1/**', '/v10', false],
    ['/v1/*/completions', '/v1/chat/completions', true],
    ['/v1/*/completions', '/v1/completions', false],
    ['/v1/*/completions', '/v1/a/b/completions', false],
    ['/v1/models/*', '/v1/models/llama', true],
    ['/v1/models/*', '/v1/models/', false],
    ['/v1/a.b', '/v1/aXb', false],
    ['/v1/*-*', '/v1/a-b', true],
    ['/v1/*-*', '/v1/a-b-c', true],
    ['/v1/*-*', '/v1/-', false],
    ['/v1/*-*-*', `/v1/${'-'.repeat(8000)}/`, false],
    ['/v1/**/items', '/v1/items', true],
    ['/v1/**/items', '/v1/a/b/items', true],
    ['/v1/**/items', '/v1/a/b/item', false],
  ];
  for (const [pattern, path, matches] of cases) {
    test(`${pattern} ${matches ? 'matches' : 'does not match'} ${path}`, () => assert.equal(compilePath(pattern)(path), matches));
  }
});

describe('compileOperationSet', () => {
  test('restOperations grant their methods and paths; no methods grants every method', () => {
    const set = compileOperationSet('s', {
      apiProductRefs: [{ name: 'p' }],
      restOperations: [
        { name: 'chat', path: '/v1/chat/completions', methods: ['post'] },
        { name: 'models', path: '/v1/models' },
      ],
    });
    assert.equal(set.matches('POST', '/v1/chat/completions'), true);
    assert.equal(set.matches('GET', '/v1/chat/completions'), false);
    assert.equal(set.matches('DELETE', '/v1/models'), true);
    assert.equal(set.matches('POST', '/v1/embeddings'), false);
  });

  test('without restOperations every path is granted; without models every model', () => {
    const set = compileOperationSet('s', { apiProductRefs: [{ name: 'p' }] });
    assert.equal(set.matches('POST', '/whatever'), true);
    assert.equal(set.models, null);
    assert.equal(set.quota, null);
    assert.equal(set.llmTokenQuota, null);
  });

  test('models, quota and token quota are compiled with their windows', () => {
    const set = compileOperationSet('s', {
      apiProductRefs: [{ name: 'p' }],
      quota: { limit: 10, interval: 1, timeUnit: 'minute' },
      llmOperations: { models: ['llama'], llmTokenQuota: { limit: 1000, interval: 1, timeUnit: 'hour' } },
    });
    assert.deepEqual([...set.models!], ['llama']);
    assert.equal(set.quota!.limit, 10);
    assert.equal(set.quota!.windowAt(90_000).startMs, 60_000);
    assert.equal(set.llmTokenQuota!.countOn, 'total');
  });

  test('a bad spec throws the schema error', () => {
    assert.throws(() => compileOperationSet('s', { apiProductRefs: [] }), /apiProductRefs/);
  });
});

test('operationSetsByProduct indexes each set under every product it references, in declaration order', () => {
  const index = operationSetsByProduct([
    { name: 'a', spec: { apiProductRefs: [{ name: 'gold' }, { name: 'silver' }] } },
    { name: 'b', spec: { apiProductRefs: [{ name: 'gold' }] } },
  ]);
  assert.deepEqual(index.get('gold')!.map((s) => s.name), ['a', 'b']);
  assert.deepEqual(index.get('silver')!.map((s) => s.name), ['a']);
  assert.equal(index.get('bronze'), undefined);
});
