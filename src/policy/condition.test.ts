// Template conditions: CEL over path, method, headers, model, product and client address; errors at compile time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type * as Re2js from 're2js';
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
  // Header names are found in any case, as HTTP compares them and `request.header.X-Tenant` reads them; Node gives
  // them lower-case, so these were false on every request.
  ["request.headers['X-Tenant'] == 'blue'", {}, true],
  ["'X-TENANT' in request.headers && request['headers']['x-Tenant'] == 'blue'", {}, true],
  ["'X-Missing' in request.headers", {}, false],
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
  // The checker types what the variables hold, and what the functions take and give, as the evaluator does.
  ["request['path'] == '/v1/chat/completions' && has(request.headers.x) == false", {}, true],
  // A header compared with null (a missing one errs: false), and numbers of different types, are valid comparisons.
  ["request.headers['x-tenant'] != null && size(model) == 5.0", {}, true],
  ["int('3') > 2 && size(request.headers) >= 1u && request.path.size() > 2.5", {}, true],
  ["request.headers.map(h, h.size()).exists(n, n > 3) ? client.ip.startsWith('127.') : false", {}, true],
  ["[1, 'a'][0] == 1 && {'x-tenant': 1}[request.headers.filter(h, h == 'x-tenant')[0]] == 1", {}, true],
  ["request.headers['x-tenant'].replace('l', 'L', -1).replace('', '.', 2) == '.b.Lue'", {}, true],
  ["['a', 'b'].join('/') == 'a/b' && request.headers['x-tenant'].split('').join() == 'blue'", {}, true],
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
  // Not a bool, or a call no overload takes: false on every request, so refused at load, naming the call.
  ["request.headers['x-tier']", /must evaluate to a bool, not string/],
  ["request.headers['x-tier'].size()", /must evaluate to a bool, not int/],
  ["request.headers['x-tier'].split(',')[0]", /must evaluate to a bool, not dyn/],
  ["request.path == 5 || request.headers['x-tier'] != 1", /string and int are never equal/],
  ['request.path > 5', /no matching overload for '_>_' applied to '\(string, int\)' \(column 14\)/],
  ["size(request.path) > '3'", /no matching overload for '_>_' applied to '\(int, string\)'/],
  ["request.headers.exists(h, h.size())", /a bool is needed here, not int/],
  ["request.query == 'a'", /has no field "query"/],
  ["apiproduct.nmae == 'gold'", /has no field "nmae"/],
  ["request.path.matches(1)", /no matching overload for 'matches' applied to 'string.\(int\)'/],
  ["request.path.frobnicate()", /unknown function "frobnicate"/],
  ['model.exists(c, true)', /cannot loop over string/],
  // A replacement or separator a client sizes: the output is the product of two client sizes.
  ["request.headers['x-a'].replace('a', request.headers['x-b']).size() > 0", /replace\(\) with a replacement/],
  ["request.headers['x-a'].split('').join(request.headers['x-b']).size() > 0", /join\(\) with a separator/],
  ["request.path.replace('/', model, 1) == ''", /not a literal/],
  // A pattern a client writes: time in its size times the text's (8 KB of each took 60-150 ms).
  ["request.headers['x-a'].matches(request.headers['x-re'])", /matches\(\) with a pattern that is not a literal .*: not allowed \(column 23\)/],
  ["request.headers.exists(k, request.headers['x-big'].matches(k))", /matches\(\) with a pattern that is not a literal/],
  ["model.matches('^' + apiproduct.name)", /matches\(\) with a pattern that is not a literal/],
  // A pattern RE2 cannot run errs on every request: refused at load, as a call no overload takes is.
  ["model.matches('(?=lla)')", /matches\(\) cannot run the pattern "\(\?=lla\)": error parsing regexp: .* \(column 6\)/],
];
for (const [expr, message] of bad) test(`"${expr}" is refused`, () => assert.throws(() => compileCondition(expr), message));

// replace() is @bufbuild/cel's rebuilt linearly (the library's took 281 ms on 16,000 dashes, time in their square),
// following the strings extension's specification (cel-go's documented examples), on small and large inputs.
test('replace() gives the specified answers, on large inputs too', () => {
  for (const [expr, expected] of [
    ["'hello hello'.replace('he', 'we')", 'wello wello'],
    ["'hello hello'.replace('he', 'we', -1)", 'wello wello'],
    ["'hello hello'.replace('he', 'we', 1)", 'wello hello'],
    ["'hello hello'.replace('he', 'we', 0)", 'hello hello'],
    ["'hello hello'.replace('', '_')", '_h_e_l_l_o_ _h_e_l_l_o_'],
    ["'hello hello'.replace('h', '')", 'ello ello'],
    ["'aaa'.replace('aa', 'b')", 'ba'],
    // An empty substring matches between code points, not between the halves of a surrogate pair.
    ["'\\U0001F600x'.replace('', '-', 2)", '-\u{1F600}-x'],
  ]) {
    assert.ok(compileCondition(`${expr} == '${expected}'`).test(ctx, {}), expr);
  }
  const n = 50_000;
  const cases: [expr: string, team: string, expected: string][] = [
    ["replace('-', '_')", '-'.repeat(n), '_'.repeat(n)],
    ["replace('-', '_', 30000)", '-'.repeat(n), '_'.repeat(30_000) + '-'.repeat(n - 30_000)],
    ["replace('--', 'ab', -1)", '-'.repeat(n), 'ab'.repeat(n / 2)],
    ["replace('-', '', 0)", '-'.repeat(n), '-'.repeat(n)],
    ["replace('', '.')", '-'.repeat(n), `.${'-.'.repeat(n)}`],
    ["replace('a-', 'a')", 'a-'.repeat(n), 'a'.repeat(n)],
  ];
  for (const [call, team, expected] of cases) {
    const condition = compileCondition(`request.headers['x-team'].${call} == request.headers['x-expected']`);
    assert.ok(condition.test(fakeContext({ headers: { 'x-team': team, 'x-expected': expected } }), {}), call);
  }
});

// matches() runs the patterns compiled at load: @bufbuild/cel compiled the pattern on every call, on each header an
// `exists` visits too (a literal pattern over 1,000 header names: 31 ms against 1.5 ms).
test('matches() compiles its patterns once, at load', (t) => {
  // The CommonJS copy, the one lazyRequire loads.
  const { RE2JS } = createRequire(import.meta.url)('re2js') as typeof Re2js;
  const compile = t.mock.method(RE2JS, 'compile');
  const condition = compileCondition("request.headers.exists(h, h.matches('^x-ten')) && model.matches('^lla') && !client.ip.matches('^lla')");
  assert.equal(compile.mock.callCount(), 2);
  for (let i = 0; i < 3; i++) assert.ok(condition.test(ctx, {}));
  assert.equal(compile.mock.callCount(), 2);
});

// matches() runs on RE2, in time linear in the text, so a condition's patterns need none of the
// checks deny lists and OASValidation give theirs: as a JavaScript RegExp this one takes seconds on 26 characters.
test("matches() with nested quantifiers answers at once (RE2, not V8's backtracking)", () => {
  const slow = compileCondition("model.matches('(x+x+)+y')");
  const started = performance.now();
  assert.equal(slow.test(fakeContext({ model: 'x'.repeat(26) }), {}), false);
  assert.ok(performance.now() - started < 1000, `took ${Math.round(performance.now() - started)} ms`);
});
