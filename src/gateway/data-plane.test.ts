// The data plane's request context: what it reads from the request line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newContext } from './data-plane.js';

test('a request target in absolute form is read as its path and query, a missing path as /', () => {
  for (const [target, url, path] of [
    ['http://gw.example/v1/chat/completions?x=1', '/v1/chat/completions?x=1', '/v1/chat/completions'],
    ['https://gw.example', '/', '/'],
    ['http://gw.example?x=1', '/?x=1', '/'],
    ['/v1/models', '/v1/models', '/v1/models'],
  ]) {
    const ctx = newContext('POST', target, {}, undefined);
    assert.deepEqual([ctx.url, ctx.path], [url, path], target);
  }
});
