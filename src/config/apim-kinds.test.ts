// Schemas of the API-management kinds: a deny list's regular expressions that V8 may take exponential time on run on
// RE2 instead, and only one that neither engine can run is refused, naming the field; ordinary ones pass. Durations
// and upstream header names are checked at load too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, manifestOf } from './manifest.js';

function problemsOf(kind: string, spec: unknown): string[] {
  try {
    manifestOf(kind, 'guard', spec);
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
}

const ORDINARY = [String.raw`\b\d{3}-\d{2}-\d{4}\b`, String.raw`^[A-Z]{2}\d+$`, String.raw`\bINC-\d{4}\b`, String.raw`\bproject\s+falcon\b`];

for (const kind of ['SanitizeUserPrompt', 'SanitizeModelResponse']) {
  test(`${kind}: nested quantifiers pass (they run on RE2); one RE2 cannot run either is refused, naming the field and why`, () => {
    // '(a' is not a regular expression at all: it gets that one problem, not a second about its running time.
    const patterns = [...ORDINARY, '(x+x+)+y', String.raw`(?:\d{1,3}\.){3}\d{1,3}`, '(x+x+)+(?=y)', '(a'];
    const problems = problemsOf(kind, { filters: { denyList: { patterns } } });
    const at = `code document 0 (${kind}/guard): spec.filters.denyList.patterns`;
    assert.equal(problems.length, 2, problems.join('\n'));
    assert.ok(problems[0].startsWith(`${at}[6]: the pattern may take exponential time in V8`), problems[0]);
    assert.match(problems[0], /and the linear engine \(RE2\) that would run it instead cannot: /);
    assert.equal(problems[1], `${at}[7]: must be a valid regular expression`);
  });
}

test('duration texts: a token lifetime may be longer than a timer can wait; a JavaScript timeLimit that is no duration is one problem, not a throw', () => {
  assert.deepEqual(problemsOf('GenerateJWT', { algorithm: 'HS256', secretKey: { value: 'k'.repeat(32) }, expiresIn: '90d' }), []);
  assert.deepEqual(problemsOf('JavaScript', { source: 'x', timeLimit: 'soon' }), ['code document 0 (JavaScript/guard): spec.timeLimit: must be a duration, e.g. 500ms, 30s, 5m, 1h']);
  assert.deepEqual(problemsOf('JavaScript', { source: 'x', timeLimit: '11s' }), ['code document 0 (JavaScript/guard): spec.timeLimit: must be at most 10s: a run holds a worker every script shares']);
});

test('durations a policy waits on a timer are 1ms to 24d, naming the field (0s failed every call at once, 30d too)', () => {
  const fields: [kind: string, spec: (d: string) => Record<string, unknown>, path: string][] = [
    ['ServiceCallout', (d) => ({ request: { url: 'http://svc.internal/check' }, timeout: d }), 'spec.timeout'],
    ['VerifyJWT', (d) => ({ algorithms: ['RS256'], jwks: { uri: 'https://idp.example/jwks', timeout: d } }), 'spec.jwks.timeout'],
    ['TokenInjection', (d) => ({ clientCredentials: { tokenUrl: 'https://idp.example/token', clientId: 'c', clientSecret: { env: 'S' }, timeout: d } }), 'spec.clientCredentials.timeout'],
    ['JavaScript', (d) => ({ source: 'x', timeLimit: d }), 'spec.timeLimit'],
  ];
  for (const [kind, spec, path] of fields) {
    for (const d of ['0s', '0.5ms', '25d']) {
      const problems = problemsOf(kind, spec(d));
      assert.ok(problems.some((p) => p.includes(`${path}: must be 1ms to 24d: a timer waits it`)), `${kind} ${d}: ${problems.join('\n')}`);
    }
  }
});

// These loaded, and then undici refused every request as the client's fault (400 invalid_request), or `host` silently
// carried the secret upstream.
test('TokenInjection header and prefix, GenerateJWT outputHeader: what no request could carry, or a framing header, is refused naming the field', () => {
  const injection = (extra: Record<string, unknown>) => ({ secret: { env: 'UPSTREAM_KEY' }, ...extra });
  const jwt = (outputHeader: string) => ({ algorithm: 'HS256', secretKey: { env: 'SIGNING_KEY' }, outputHeader });
  const cases: [kind: string, spec: Record<string, unknown>, problem: string][] = [
    ['TokenInjection', injection({ header: 'x bad' }), 'spec.header: must be an HTTP header name'],
    ['TokenInjection', injection({ header: 'Content-Length' }), 'spec.header: frames the message: the proxy sets it, a policy may not'],
    ['TokenInjection', injection({ header: 'transfer-encoding' }), 'spec.header: frames the message: the proxy sets it, a policy may not'],
    ['TokenInjection', injection({ header: 'host' }), 'spec.header: frames the message: the proxy sets it, a policy may not'],
    ...['Bearer\r\nx-evil: 1\r\n', 'Bearer\n', 'Bearer\0', 'Bearer\t', 'Bearer ✓'].map(
      (prefix): [string, Record<string, unknown>, string] => ['TokenInjection', injection({ prefix }), 'spec.prefix: must not hold control characters (CR, LF, NUL…) nor characters past U+00FF: a header cannot carry them'],
    ),
    ['GenerateJWT', jwt('bad header'), 'spec.outputHeader: must be an HTTP header name'],
    ['GenerateJWT', jwt('host'), 'spec.outputHeader: frames the message: the proxy sets it, a policy may not'],
  ];
  for (const [kind, spec, problem] of cases) {
    assert.deepEqual(problemsOf(kind, spec), [`code document 0 (${kind}/guard): ${problem}`], JSON.stringify(spec));
  }
  assert.deepEqual(problemsOf('TokenInjection', injection({ header: 'X-Api-Key', prefix: 'Token ' })), []);
  assert.deepEqual(problemsOf('TokenInjection', injection({ prefix: 'Bearer\u00a0' })), []);
  assert.deepEqual(problemsOf('GenerateJWT', jwt('Authorization')), []);
});

test('an ApimTemplate holds at most 1,000 entries, each of at most 1,000 policies, naming the field', () => {
  const refs = (n: number) => Array.from({ length: n }, (_, i) => ({ kind: 'SpikeArrest', name: `s${i}` }));
  assert.deepEqual(problemsOf('ApimTemplate', { templates: [{ policies: refs(1000) }] }), []);
  assert.match(problemsOf('ApimTemplate', { templates: [{ policies: refs(1001) }] }).join('\n'), /spec\.templates\[0\]\.policies: /);
  assert.match(problemsOf('ApimTemplate', { templates: Array.from({ length: 1001 }, () => ({ policies: refs(1) })) }).join('\n'), /spec\.templates: /);
});
