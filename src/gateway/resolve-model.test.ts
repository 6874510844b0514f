// HTTPRoute matching: Gateway API's `hostnames` (exact or `*.` suffix, the port ignored) and its precedence, and the
// model a request gets from the pool a route drew or by its name alone.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, manifestOf, parseManifests } from '../config/manifest.js';
import { compileConfig } from '../config/runtime-config.js';
import { newContext, routeRequest } from './data-plane.js';
import { GatewayError } from './errors.js';
import { matchRoute, resolveModel } from './resolve-model.js';

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

type Match = { path?: { type: 'PathPrefix' | 'Exact'; value: string }; headers?: { name: string; value: string }[]; method?: string };

/** The rule (by backend) a POST of /v1/chat/completions with headers x-a and x-b takes: one rule per entry, in this order. */
function ruleFor(rules: { name: string; match?: Match }[], oneRoute: boolean): string | undefined {
  const rule = (r: { name: string; match?: Match }) => ({ ...(r.match && { matches: [r.match] }), backendRefs: [{ url: `http://${r.name}.backend` }] });
  const manifests = oneRoute
    ? [manifestOf('HTTPRoute', 'r', { rules: rules.map(rule) })]
    : rules.map((r) => manifestOf('HTTPRoute', r.name, { rules: [rule(r)] }));
  const ctx = newContext('POST', '/v1/chat/completions', { host: 'api.example.com', 'x-a': '1', 'x-b': '2' }, undefined);
  const backend = matchRoute(compileConfig(manifests), ctx);
  return backend?.kind === 'url' ? new URL(backend.url).hostname.replace('.backend', '') : backend?.kind;
}

test("Gateway API's match precedence decides among matching rules, whatever their order: Exact, longest prefix, method, most headers", () => {
  const prefix = (value: string): Match['path'] => ({ type: 'PathPrefix', value });
  const x = (...names: string[]) => names.map((name) => ({ name, value: name === 'x-a' ? '1' : '2' }));
  // [why, the match that must win, the one it must beat]
  const cases: [string, Match | undefined, Match | undefined][] = [
    ['Exact over a prefix of the same path, with a method and headers', { path: { type: 'Exact', value: '/v1/chat/completions' } }, { path: prefix('/v1/chat/completions'), method: 'POST', headers: x('x-a', 'x-b') }],
    ['a longer prefix over a shorter, with a method and headers', { path: prefix('/v1/chat') }, { path: prefix('/v1'), method: 'POST', headers: x('x-a', 'x-b') }],
    ['a prefix over no path (`/`)', { path: prefix('/v1') }, { headers: x('x-a', 'x-b') }],
    ['a prefix over a rule without matches (`/`)', { path: prefix('/v1') }, undefined],
    ['a method over headers', { path: prefix('/v1'), method: 'POST' }, { path: prefix('/v1'), headers: x('x-a', 'x-b') }],
    ['more headers over fewer', { path: prefix('/v1'), headers: x('x-a', 'x-b') }, { path: prefix('/v1'), headers: x('x-a') }],
    ['a header over none, on a catch-all', { path: prefix('/'), headers: x('x-b') }, { path: prefix('/') }],
  ];
  for (const [why, winner, loser] of cases) {
    for (const oneRoute of [true, false]) {
      const how = `${why} (${oneRoute ? 'rules of one route' : 'one route each'})`;
      assert.equal(ruleFor([{ name: 'loser', match: loser }, { name: 'winner', match: winner }], oneRoute), 'winner', how);
      assert.equal(ruleFor([{ name: 'winner', match: winner }, { name: 'loser', match: loser }], oneRoute), 'winner', how);
    }
  }
  // Equal by every criterion: the first in the files' order.
  const same = { path: prefix('/v1'), headers: x('x-a') };
  assert.equal(ruleFor([{ name: 'first', match: same }, { name: 'second', match: { path: prefix('/v1'), headers: x('x-b') } }], false), 'first');
  // A match that does not hold ranks nowhere, however specific.
  assert.equal(ruleFor([{ name: 'open', match: { path: prefix('/') } }, { name: 'closed', match: { path: prefix('/v1'), headers: [{ name: 'x-a', value: 'other' }] } }], true), 'open');
});

test('the hostname still ranks before the match: an exact host with a catch-all rule over an Exact path for every host', () => {
  const text = `${routes([{ name: 'host', hostnames: ['api.example.com'], path: '/' }])}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: exact }
spec:
  rules: [{ matches: [{ path: { type: Exact, value: /x } }], backendRefs: [{ url: "http://exact.backend" }] }]
`;
  assert.equal(routeFor(text, 'api.example.com'), 'host');
  assert.equal(routeFor(text, 'other.example.com'), 'exact');
});

describe('the model a request gets: per pool, and by name only from pools no HTTPRoute sends to', () => {
  const pool = (name: string, port: number) => manifestOf('InferencePool', name, { endpoints: [`http://127.0.0.1:${port}`] });
  const model = (name: string, modelName: string, poolName: string) => manifestOf('InferenceModel', name, { modelName, poolRef: { name: poolName } });
  const config = compileConfig([
    pool('primary', 9001),
    pool('canary', 9002),
    pool('open', 9003),
    pool('premium', 9004),
    pool('twin-a', 9005),
    pool('twin-b', 9006),
    model('llama-primary', 'llama', 'primary'),
    model('llama-canary', 'llama', 'canary'),
    model('llama-open', 'small', 'open'),
    model('big', 'big', 'premium'),
    model('twin-a', 'twin', 'twin-a'),
    model('twin-b', 'twin', 'twin-b'),
    manifestOf('HTTPRoute', 'split', {
      hostnames: ['split.example.com'],
      rules: [{ backendRefs: [{ kind: 'InferencePool', name: 'primary', weight: 1 }, { kind: 'InferencePool', name: 'canary', weight: 1 }] }],
    }),
    manifestOf('HTTPRoute', 'premium-only', {
      rules: [{ matches: [{ headers: [{ name: 'x-plan', value: 'gold' }] }], backendRefs: [{ kind: 'InferencePool', name: 'premium' }] }],
    }),
  ]);
  /** The pool a chat request for `model` with these headers is served by, or the refusal's status and code. */
  const poolFor = (model: string, headers: Record<string, string> = {}) => {
    const ctx = newContext('POST', '/v1/chat/completions', { host: 'api.example.com', ...headers }, undefined);
    ctx.model = model;
    try {
      routeRequest(config, ctx);
      resolveModel(config, ctx);
      return ctx.modelConfig!.pool.name;
    } catch (err) {
      assert.ok(err instanceof GatewayError, String(err));
      return `${err.status} ${err.code}: ${err.message}`;
    }
  };

  test('a route split over two pools that serve the same name: each pool its own model, both drawn', () => {
    assert.deepEqual(config.models.get('llama')!.map((m) => m.pool.name), ['primary', 'canary']);
    const seen = new Set<string>();
    for (let i = 0; i < 64; i++) seen.add(poolFor('llama', { host: 'split.example.com' }));
    assert.deepEqual([...seen].sort(), ['canary', 'primary']);
  });

  test('by name alone: a pool no route sends to serves; several such pools are a 404 model_not_found saying why', () => {
    assert.equal(poolFor('small'), 'open');
    assert.match(poolFor('twin'), /^404 model_not_found: The model "twin" is served by several InferencePools \("twin-a", "twin-b"\) and no HTTPRoute chose one$/);
    assert.match(poolFor('nope'), /^404 model_not_found: The model "nope" does not exist$/);
  });

  test("a route's hostnames and headers restrict: a request no route takes does not reach its pool by name (404 route_not_found)", () => {
    assert.equal(poolFor('big', { 'x-plan': 'gold' }), 'premium');
    assert.match(poolFor('big'), /^404 route_not_found: No route for POST \/v1\/chat\/completions: the model "big" is served through HTTPRoutes only/);
    assert.match(poolFor('big', { 'x-plan': 'silver' }), /^404 route_not_found: /);
    assert.match(poolFor('llama'), /^404 route_not_found: /);
    // The route takes it, to a pool that does not serve the name.
    assert.match(poolFor('small', { 'x-plan': 'gold' }), /^404 model_not_found: The model "small" is not served by InferencePool "premium"$/);
  });
});
