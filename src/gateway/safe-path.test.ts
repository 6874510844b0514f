import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError } from './errors.js';
import { assertSafePath, hasDotSegment } from './safe-path.js';

test('paths with dot segments or encoded separators are refused; ordinary paths, dots in names included, are not', () => {
  for (const path of ['/v1/public/../admin', '/v1/./chat/completions', '/..', '/v1/chat/%2e%2e/x', '/v1/%2E/x', '/v1/a/.%2e/b', '/v1/a%2Fb', '/v1/a%5cb', '/v1/a\\..\\b', '/v1/x/..']) {
    assert.throws(() => assertSafePath(path), (err: unknown) => err instanceof GatewayError && err.status === 400 && err.code === 'invalid_request', path);
  }
  for (const path of ['/v1/chat/completions', '/v1/files/report.v2.txt', '/v1/models/llama-3.1-8b', '/v1/a...b', '/v1/.well-known/x', '/v1/a%20b', '/']) {
    assert.doesNotThrow(() => assertSafePath(path), path);
  }
});

test("a dot segment with path parameters is refused: servlet containers resolve /public/..;x/admin to /admin", () => {
  for (const path of ['/public/..;/admin', '/public/..;jsessionid=1/admin', '/public/.;x/admin', '/public/%2e%2e;/admin', '/public/..;']) {
    assert.throws(() => assertSafePath(path), /dot segment/, path);
  }
  assert.doesNotThrow(() => assertSafePath('/v1/models/a..;b'));
});

test('a fragment is refused: a server that drops it would resolve the dot segment it hid (/public/..#x is /)', () => {
  for (const path of ['/public/..#x', '/public/.#', '/v1/chat/completions#x', '/v1/responses/resp_1#']) {
    assert.throws(() => assertSafePath(path), (err: unknown) => err instanceof GatewayError && err.status === 400 && err.code === 'invalid_request', path);
  }
  // The admin API's check, for a path its URL parser resolves.
  assert.equal(hasDotSegment('/v1/maps/m/entries/..#x'), true);
  assert.equal(hasDotSegment('/v1/maps/m/entries/a#..'), false);
});
