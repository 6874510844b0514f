// Dot paths: set overwrites whatever is in the way (a client's scalar, null or array no longer keeps a field out);
// array segments are element indexes only; remove deletes or splices.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { removePath, setPath } from './json-path.js';

const set = (root: Record<string, unknown>, path: string, value: unknown) => {
  setPath(root, path.split('.'), value);
  return root;
};

test('set creates missing objects and overwrites an object field', () => {
  assert.deepEqual(set({}, 'metadata.app', 'a'), { metadata: { app: 'a' } });
  assert.deepEqual(set({ metadata: { app: 'other', keep: 1 } }, 'metadata.app', 'a'), { metadata: { app: 'a', keep: 1 } });
});

test('set replaces a non-object on the way with an object holding the field', () => {
  for (const inTheWay of ['x', 7, true, null, ['x'], []]) {
    const root = set({ model: 'm', metadata: inTheWay }, 'metadata.app', 'a');
    assert.equal(JSON.stringify(root), '{"model":"m","metadata":{"app":"a"}}', `metadata: ${JSON.stringify(inTheWay)}`);
  }
  assert.deepEqual(set({ a: { b: 'x' } }, 'a.b.c', 1), { a: { b: { c: 1 } } });
});

test('set follows an array by the index of an element it has; any other segment replaces the array', () => {
  const messages = () => [{ role: 'user', content: 'hi' }, { role: 'user', content: 'there' }];
  assert.deepEqual(set({ messages: messages() }, 'messages.1.content', 'x').messages, [{ role: 'user', content: 'hi' }, { role: 'user', content: 'x' }]);
  assert.deepEqual(set({ tags: ['a', 'b'] }, 'tags.0', 'z'), { tags: ['z', 'b'] });
  for (const segment of ['app', '2', '-1', '1e0', '01', 'length']) {
    const root = set({ messages: messages() }, `messages.${segment}`, 'x');
    assert.equal(JSON.stringify(root), JSON.stringify({ messages: { [segment]: 'x' } }), `segment ${segment}`);
  }
});

test('remove deletes a field or splices an element it names by index, and says whether there was one', () => {
  const root = { metadata: { app: 'a' }, tags: ['a', 'b', 'c'] };
  assert.equal(removePath(root, ['metadata', 'app']), true);
  assert.equal(removePath(root, ['tags', '1']), true);
  for (const missing of [['metadata', 'app'], ['tags', '1e0'], ['tags', '5'], ['tags', 'x'], ['model', 'x']]) assert.equal(removePath(root, missing), false, missing.join('.'));
  assert.deepEqual(root, { metadata: {}, tags: ['a', 'c'] });
});
