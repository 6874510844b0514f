// HTTPRoute matching by host: Gateway API's `hostnames` (exact or `*.` suffix, the port ignored) and its precedence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseManifests } from '../config/manifest.js';
import { compileConfig } from '../config/runtime-config.js';
import { newContext } from './data-plane.js';
import { GatewayError } from './errors.js';
import { matchRoute } from './resolve-model.js';

/** One route per entry, each to its own URL backend (`http://<name>.backend`), in this order. */
function routes(specs: { name: string; hostnames?: string[]; path?: string }[]): string {
  return specs
    .map(
      (r) => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: ${r.name} }
spec:
  parentRefs: [{ name: my-gateway }]
  ${r.hostnames ? `hostnames: ${JSON.stringify(r.hostnames)}` : ''}
  rules: [{ ${r.path ? `matches: [{ path: { value: "${r.path}" } }], ` : ''}backendRefs: [{ url: "http://${r.name}.backend" }] }]
`,
    )
    .join('---\n');
}

/** The route (by backend) a GET of `path` with this Host header takes, or undefined. */
function routeFor(text: string, host: string | undefined, path = '/x'): string | undefined {
  const config = compileConfig(parseManifests(text, 'routes.yaml'));
  const backend = matchRoute(config, newContext('GET', path, host === undefined ? {} : { host }, undefined));
  return backend?.kind === 'url' ? new URL(backend.url).hostname.replace('.backend', '') : backend?.kind;
}

test('a route with hostnames matches only those hosts, the port ignored; one without matches every host', () => {
  const text = routes([{ name: 'api', hostnames: ['api.example.com', '*.models.example.com'] }]);
  const cases: [string | undefined, string | undefined][] = [
    ['api.example.com', 'api'],
    ['api.example.com:8080', 'api'],
    ['API.Example.COM', 'api'],
    ['llama.models.example.com', 'api'],
    ['a.b.models.example.com:443', 'api'],
    ['models.example.com', undefined],
    ['xmodels.example.com', undefined],
    ['other.example.com', undefined],
    ['example.com', undefined],
    ['[::1]:8080', undefined],
    [undefined, undefined],
  ];
  for (const [host, expected] of cases) assert.equal(routeFor(text, host), expected, String(host));
  const open = routes([{ name: 'all' }]);
  for (const host of ['api.example.com', 'localhost:8080', '[::1]:8080', undefined]) assert.equal(routeFor(open, host), 'all', String(host));
});

test('the most specific hostname wins: exact over wildcard, longer over shorter, any over none; then file order', () => {
  const text = routes([
    { name: 'none' },
    { name: 'wide', hostnames: ['*.example.com'] },
    { name: 'narrow', hostnames: ['*.eu.example.com'] },
    { name: 'exact', hostnames: ['api.eu.example.com'] },
    { name: 'exact2', hostnames: ['api.eu.example.com'] },
  ]);
  const cases: [string, string][] = [
    ['api.eu.example.com', 'exact'],
    ['web.eu.example.com', 'narrow'],
    ['web.us.example.com', 'wide'],
    ['elsewhere.test', 'none'],
  ];
  for (const [host, expected] of cases) assert.equal(routeFor(text, host), expected, host);
});

test('a more specific hostname only wins when its rules match the request', () => {
  const text = routes([
    { name: 'general', path: '/v1' },
    { name: 'special', hostnames: ['api.example.com'], path: '/special' },
  ]);
  assert.equal(routeFor(text, 'api.example.com', '/special/a'), 'special');
  assert.equal(routeFor(text, 'api.example.com', '/v1/chat/completions'), 'general');
});

test('hostnames are checked as Gateway API validates them', () => {
  const bad: [string, RegExp][] = [
    ['api.example.com:8080', /spec\.hostnames\[0\]: must be a lower-case host name/],
    ['API.example.com', /spec\.hostnames\[0\]: must be a lower-case host name/],
    ['a.*.example.com', /spec\.hostnames\[0\]: must be a lower-case host name/],
    ['10.0.0.1', /spec\.hostnames\[0\]: must be a host name, not an IP address/],
  ];
  for (const [name, expect] of bad) {
    const err = (() => {
      try {
        compileConfig(parseManifests(routes([{ name: 'r', hostnames: [name] }]), 'routes.yaml'));
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(err instanceof ConfigError, name);
    assert.ok(err.problems.some((p) => expect.test(p)), `${name}: ${JSON.stringify(err.problems)}`);
  }
});

test('a rule whose backends all have weight 0 refuses its traffic (503 no_healthy_endpoints) instead of passing it on', () => {
  const config = compileConfig(
    parseManifests(
      `${routes([{ name: 'rest', path: '/v1' }])}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: team-b }
spec:
  hostnames: [b.example.com]
  rules: [{ backendRefs: [{ url: "http://b1.backend", weight: 0 }, { url: "http://b2.backend", weight: 0 }] }]
`,
      'routes.yaml',
    ),
  );
  assert.throws(
    () => matchRoute(config, newContext('POST', '/v1/chat/completions', { host: 'b.example.com' }, undefined)),
    (err: unknown) => err instanceof GatewayError && err.status === 503 && err.code === 'no_healthy_endpoints' && /HTTPRoute "team-b" .*weight 0/.test(err.message),
  );
  const other = matchRoute(config, newContext('POST', '/v1/chat/completions', { host: 'a.example.com' }, undefined));
  assert.deepEqual(other, { kind: 'url', url: 'http://rest.backend', address: 'rest.backend:80' });
});
