import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileConfig, type RouteBackend } from '../config/runtime-config.js';
import { manifestOf } from '../config/manifest.js';
import { GatewayError } from './errors.js';
import { urlEndpoint } from './url-endpoint.js';

/** The URL backend an HTTPRoute with this backendRef URL compiles to. */
function backendOf(url: string): Extract<RouteBackend, { kind: 'url' }> {
  const config = compileConfig([manifestOf('HTTPRoute', 'r', { rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/x' } }], backendRefs: [{ url }] }] })]);
  const backend = config.routes[0].backends!.pick();
  assert.equal(backend.kind, 'url');
  return backend as Extract<RouteBackend, { kind: 'url' }>;
}

test('the address always has its port, the scheme default when the URL has none', () => {
  const cases: [string, string][] = [
    ['http://10.1.2.3', '10.1.2.3:80'],
    ['https://10.1.2.4', '10.1.2.4:443'],
    ['http://10.1.2.3:8000', '10.1.2.3:8000'],
    ['https://models.example:8443', 'models.example:8443'],
    ['http://[::1]', '[::1]:80'],
  ];
  for (const [url, address] of cases) assert.deepEqual(urlEndpoint(backendOf(url), undefined), { url, address }, url);
});

test('a subset hint: the backend in it is given, one outside it (or an empty hint) is the 503 no_healthy_endpoints', () => {
  const backend = backendOf('http://10.1.2.3');
  assert.equal(urlEndpoint(backend, new Set(['10.1.2.3:80'])).address, '10.1.2.3:80');
  for (const subset of [new Set(['10.9.9.9:8000']), new Set(['10.1.2.3']), new Set<string>()]) {
    assert.throws(
      () => urlEndpoint(backend, subset),
      (err: unknown) => err instanceof GatewayError && err.status === 503 && err.code === 'no_healthy_endpoints',
    );
  }
});
