// Template conditions: CEL over path, method, headers, model, product and client address; errors at compile time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileCondition } from './condition.js';
import { fakeContext } from './testing.js';
import type { ApimState } from './types.js';

const ctx = fakeContext({ url: '/v1/chat/completions?x=1', headers: { 'x-tenant': 'blue' }, model: 'llama' });
const entitled: ApimState = { product: { name: 'gold', status: 'approved', operationSets: [] } };

const cases: [expr: string, state: ApimState, expected: boolean][] = [
  ["request.path == '/v1/chat/completions'", {}, true],
  ["request.path.startsWith('/v1/chat')", {}, true],
  ["request.method == 'GET'", {}, false],
  ["request.headers['x-tenant'] == 'blue'", {}, true],
  ["'x-tenant' in request.headers", {}, true],
  ["request.headers.exists(h, h.startsWith('x-'))", {}, true],
  ["model == 'llama' && client.ip == '127.0.0.1'", {}, true],
  ["model.matches('^lla')", {}, true],
  ["apiproduct.name == 'gold'", entitled, true],
  ["apiproduct.name == ''", {}, true],
  // A missing key is an error in CEL; the condition is then false rather than a failed request.
  ["request.headers['x-missing'] == 'a'", {}, false],
  // A loop inside a loop over headers is allowed over a constant literal, and a loop over headers inside one over a
  // constant literal: the literal's size is the author's.
  ["request.headers.exists(h, ['x-tenant', 'x-team'].exists(n, n == h))", {}, true],
  ["['x-tenant', 'x-team'].exists(n, request.headers.exists(h, h == n))", {}, true],
  // A split inside a loop over a constant literal, `in` a constant list or a map (a lookup, not a scan) in a loop, a
  // split outside any loop: time linear in what a client sends.
  ["['blue', 'red'].exists(n, n in request.headers['x-tenant'].split(','))", {}, true],
  ["request.headers.exists(h, h in ['x-tenant', 'x-team'])", {}, true],
  ["request.headers.exists(h, 'x-tenant' in request.headers)", {}, true],
  ["'blue' in request.headers['x-tenant'].split(',')", {}, true],
];
for (const [expr, state, expected] of cases) test(`${expr} → ${expected}`, () => assert.equal(compileCondition(expr).test(ctx, state), expected));

const bad: [expr: string, message: RegExp][] = [
  ['request.path ==', /not a CEL expression/],
  ["tenant == 'a'", /unknown variable "tenant"/],
  ['request.path', /must evaluate to a bool/],
  ['request.headers.exists(k, request.headers.exists(j, j != k && request.headers[j] == request.headers[k]))', /inside another/],
  ["request.headers.all(k, request.headers.filter(j, j == k).size() == 1)", /inside another/],
  // The items of one split header are as many as a client wants; so is a list holding the headers.
  ["request.headers['x-a'].split(',').exists(a, request.headers['x-a'].split(',').exists(b, a == b + 'x'))", /inside another/],
  ['[request.headers].exists(h, h.exists(a, h.exists(b, a == b)))', /inside another/],
  ["request.headers.exists(h, request.headers[h].split(',').exists(v, v == 'blue'))", /inside another/],
  // A split in a loop's body is a loop too: it walks the header on every item, and `in` then scans its list.
  ["request.headers['x-teams'].split(',').exists(t, t in request.headers['x-allowed-teams'].split(','))", /inside another/],
  ["request.headers.exists(h, request.headers['x-b'].split(',').size() > 1)", /inside another/],
];
for (const [expr, message] of bad) test(`"${expr}" is refused`, () => assert.throws(() => compileCondition(expr), message));

// matches() runs on RE2 (@bufbuild/re2), in time linear in the text, so a condition's patterns need none of the
// checks deny lists and OASValidation give theirs: as a JavaScript RegExp this one takes seconds on 26 characters.
test("matches() with nested quantifiers answers at once (RE2, not V8's backtracking)", () => {
  const slow = compileCondition("model.matches('(x+x+)+y')");
  const started = performance.now();
  assert.equal(slow.test(fakeContext({ model: 'x'.repeat(26) }), {}), false);
  assert.ok(performance.now() - started < 1000, `took ${Math.round(performance.now() - started)} ms`);
});
