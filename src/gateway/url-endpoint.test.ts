import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError } from './errors.js';
import { urlEndpoint } from './url-endpoint.js';

test('the address always has its port, the scheme default when the URL has none', () => {
  const cases: [string, string][] = [
    ['http://10.1.2.3', '10.1.2.3:80'],
    ['https://10.1.2.4/v1', '10.1.2.4:443'],
    ['http://10.1.2.3:8000', '10.1.2.3:8000'],
    ['https://models.example:8443/x', 'models.example:8443'],
    ['http://[::1]', '[::1]:80'],
  ];
  for (const [url, address] of cases) assert.deepEqual(urlEndpoint(url, undefined), { url, address }, url);
});

test('a subset hint: the backend in it is given, one outside it (or an empty hint) is the 503 no_healthy_endpoints', () => {
  assert.equal(urlEndpoint('http://10.1.2.3', new Set(['10.1.2.3:80'])).address, '10.1.2.3:80');
  for (const subset of [new Set(['10.9.9.9:8000']), new Set(['10.1.2.3']), new Set<string>()]) {
    assert.throws(
      () => urlEndpoint('http://10.1.2.3', subset),
      (err: unknown) => err instanceof GatewayError && err.status === 503 && err.code === 'no_healthy_endpoints',
    );
  }
});
