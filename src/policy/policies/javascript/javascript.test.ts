// JavaScript: the sandbox API (variables, headers, body, the answer), no Node globals, faults, and the limits —
// a runaway script times out within its limit while other work carries on, and memory is capped.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError } from '../../../gateway/errors.js';
import { MemoryCounterStore } from '../../../store/counters/memory.js';
import { fakeContext, testDeps } from '../../testing.js';
import type { ApimState } from '../../types.js';
import { JAVASCRIPT_FAULTS as F, javaScript } from './javascript.js';
import { sandboxPool } from './sandbox-pool.js';
import type { SandboxJob, WorkerMessage } from './sandbox-protocol.js';
import { spawnWorker } from '../../../lib/spawn-worker.js';
import { once } from 'node:events';

const deps = testDeps(new MemoryCounterStore());
/** Scripts not about time limits get a generous one: the default 200 ms was missed on a loaded CI host. */
const ROOMY = '5s';
const js = (source: string, extra: Record<string, unknown> = {}) => javaScript('js', { source, timeLimit: ROOMY, ...extra }, deps);

async function runRequest(source: string, headers: Record<string, string> = {}, state: ApimState = {}) {
  const ctx = fakeContext({ headers });
  await js(source).admit!(ctx, state);
  return { ctx, state };
}

/** What a response script makes of the answer `{"id":"x"}` with `headers`. */
async function runResponse(source: string, extra: Record<string, unknown> = {}, state: ApimState = {}, headers: Record<string, string> = {}) {
  const flow = js(source, { flow: 'response', ...extra }).respond!(fakeContext(), state, 200)!;
  flow.headers!(200, headers);
  return flow.body!(Buffer.from('{"id":"x"}'), 200);
}

/**
 * A script that replaces the sandbox's JSON.stringify (its own to change) so the prelude hands back `changes` over an
 * untouched run's output, once.
 */
const handingBack = (changes: Record<string, unknown>) =>
  `var real = JSON.stringify;
   JSON.stringify = function (v) {
     if (!v || !v.variables) return real.apply(null, arguments);
     JSON.stringify = real;
     var out = JSON.parse(real(v)), changes = ${JSON.stringify(changes)};
     for (var k in changes) out[k] = changes[k];
     return real(out);
   };`;

const fault = (code: string, pattern?: RegExp) => (err: unknown) =>
  err instanceof GatewayError && err.code === code && err.status === 500 && (!pattern || pattern.test(err.message));

before(async () => {
  // Every shared worker started, so the timings below measure scripts rather than start-up.
  await sandboxPool().ready();
});

describe('config', () => {
  test('a syntax error, a bad time limit or memory limit is refused', () => {
    assert.throws(() => js('if ('), /source: Unexpected/);
    // A source that closes the function it is wrapped in would put code at the top of the sandbox script.
    assert.throws(() => js('}; for (;;) {} globalThis.escaped = function () {'), /source: /);
    assert.throws(() => js('// nothing', { timeLimit: '200' }), /duration/);
    assert.throws(() => js('// nothing', { memoryLimitMb: 0 }), /memoryLimitMb/);
    assert.throws(() => js('// nothing', { timeLimit: '11s' }), /at most 10s/);
  });

  test('building starts no worker; start() does (a policy no template lists is built only to check it)', (t) => {
    const starts: number[] = [];
    t.mock.method(sandboxPool(), 'start', () => void starts.push(1));
    const request = js('// nothing');
    const response = js('// nothing', { flow: 'response' });
    assert.equal(starts.length, 0);
    request.start!();
    response.start!();
    assert.equal(starts.length, 2);
  });
});

describe('request flow', () => {
  test('headers, flow variables and body fields changed by the script are applied to the request', async () => {
    const state: ApimState = { vars: new Map([['kvm.tier', 'gold']]) };
    const { ctx } = await runRequest(
      `request.headers['x-tier'] = context.getVariable('kvm.tier');
       delete request.headers['x-drop'];
       context.setVariable('request.header.x-user', context.getVariable('request.header.x-client') + '!');
       context.setVariable('script.seen', request.body.messages.length);
       request.body.max_tokens = 7;`,
      { 'x-drop': 'bye', 'x-client': 'alice' },
      state,
    );
    assert.deepEqual(ctx.upstreamHeaders, { 'x-tier': 'gold', 'x-user': 'alice!', 'x-drop': null });
    assert.equal(ctx.headers['x-tier'], 'gold', 'later policies see the new header');
    assert.equal(state.vars!.get('script.seen'), '1');
    assert.equal(ctx.body!.max_tokens, 7);
    assert.equal(ctx.bodyChanged, true);
  });

  test('headers built with an own __proto__ key set no prototype and pass no framing header', async () => {
    const ctx = fakeContext({ headers: { 'x-client': 'alice' } });
    const policy = js(`var h = JSON.parse('{"__proto__": {"host": "evil.example", "content-length": "3"}, "X-Kept": "yes"}');
       for (var k in request.headers) h[k] = request.headers[k];
       request.headers = h;`);
    // Its value is no header value: the script's headers are refused whole, before any of them is used.
    await assert.rejects(Promise.resolve(policy.admit!(ctx, {})), fault(F.scriptExecutionFailed, /request\.headers\['__proto__'\] must be a string/));
    assert.equal(ctx.upstreamHeaders, undefined, 'nothing reaches the headers sent upstream');
    assert.equal(ctx.headers['x-client'], 'alice');
  });

  test('a header value that is not a string → 500 ScriptExecutionFailed; null (an unset variable) is no header', async () => {
    await assert.rejects(runRequest(`request.headers['x-count'] = request.body.messages.length;`), fault(F.scriptExecutionFailed, /request\.headers\['x-count'\] must be a string/));
    const { ctx } = await runRequest(`request.headers['x-tenant'] = context.getVariable('kvm.unset'); delete request.headers['x-drop'];`, { 'x-drop': 'bye' });
    assert.deepEqual(ctx.upstreamHeaders, { 'x-drop': null });
    assert.equal(ctx.headers['x-tenant'], undefined);
  });

  test('a header that cannot be sent (CR/LF, NUL, past U+00FF, a name that is no token) → 500 ScriptExecutionFailed naming it, no header applied', async () => {
    // Before: the model server's client refused it, and the client was answered 400 invalid_request for the script's doing.
    for (const [source, name] of [
      ["request.headers['x-a'] = 'a\\r\\nx-injected: 1';", 'x-a'],
      ["request.headers['x-a'] = 'a\\u0000b';", 'x-a'],
      ["request.headers['x-a'] = 'price \\u20ac';", 'x-a'],
      ["request.headers['x-ok'] = 'yes'; request.headers['bad name'] = 'v';", 'bad name'],
    ]) {
      const ctx = fakeContext();
      await assert.rejects(Promise.resolve(js(source).admit!(ctx, {})), fault(F.scriptExecutionFailed, new RegExp(`request\\.headers\\['${name}'\\] cannot be sent`)), source);
      assert.deepEqual(ctx.upstreamHeaders ?? {}, {}, source);
    }
    // What a header can carry goes: Latin-1 (as obs-text) and a tab.
    const { ctx } = await runRequest("request.headers['x-a'] = 'caf\\u00e9\\tau lait';");
    assert.equal(ctx.upstreamHeaders!['x-a'], 'caf\u00e9\tau lait');
  });

  test('an untouched request stays untouched', async () => {
    const { ctx } = await runRequest('var x = request.body.model;');
    assert.equal(ctx.bodyChanged, false);
    assert.deepEqual(ctx.upstreamHeaders ?? {}, {});
  });

  test('built-in variables are readable, never writable', async () => {
    const state: ApimState = {};
    await runRequest(`context.setVariable('probe.model', context.getVariable('model')); context.setVariable('model', 'x');`, {}, state);
    assert.equal(state.vars!.get('probe.model'), 'llama');
    assert.equal(state.vars!.has('model'), false);
  });

  test('there is no Node, file system or network in the sandbox', async () => {
    const state: ApimState = {};
    await runRequest(`context.setVariable('probe.globals', [typeof process, typeof require, typeof fetch, typeof setTimeout, typeof XMLHttpRequest].join(','));`, {}, state);
    assert.equal(state.vars!.get('probe.globals'), 'undefined,undefined,undefined,undefined,undefined');
  });

  test('the script is compiled once per worker: its globals persist between runs there', async () => {
    const policy = js(`globalThis.runs = (globalThis.runs || 0) + 1; context.setVariable('probe.runs', runs);`);
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      const state: ApimState = {};
      await policy.admit!(fakeContext(), state);
      seen.push(state.vars!.get('probe.runs')!);
    }
    assert.deepEqual(seen, ['1', '2', '3']);
  });

  test('the scripts a worker keeps may hold 1 GiB of memory limits together: beyond, the least recently used is disposed', async () => {
    // Three of 256 MiB fit (each script's memory may grow to 262 MiB); a fourth disposes the oldest, whose globals then
    // start over (one worker: runs one at a time).
    const source = `globalThis.runs = (globalThis.runs || 0) + 1; context.setVariable('probe.runs', runs);`;
    const policies = Array.from({ length: 5 }, (_, i) => javaScript(`big-${i}`, { source, memoryLimitMb: 256, timeLimit: ROOMY }, deps));
    const runs = async (i: number) => {
      const state: ApimState = {};
      await policies[i].admit!(fakeContext(), state);
      return state.vars!.get('probe.runs');
    };
    assert.equal(await runs(0), '1');
    assert.equal(await runs(0), '2', 'kept between runs');
    for (let i = 1; i < 5; i++) await runs(i);
    assert.equal(await runs(0), '1', 'disposed to make room, compiled afresh');
  });

  test('two policies with the same source (one per tenant) keep their globals apart', async () => {
    const source = `context.setVariable('probe.previous', globalThis.last || 'none'); globalThis.last = context.getVariable('kvm.user');`;
    const [a, b] = [javaScript('tenant-a', { source, timeLimit: ROOMY }, deps), javaScript('tenant-b', { source, timeLimit: ROOMY }, deps)];
    await a.admit!(fakeContext(), { vars: new Map([['kvm.user', 'alice@tenant-a']]) });
    const seen: ApimState = { vars: new Map([['kvm.user', 'bob@tenant-b']]) };
    await b.admit!(fakeContext(), seen);
    assert.equal(seen.vars!.get('probe.previous'), 'none');
  });
});

describe('faults and limits', () => {
  test('a script that throws → 500 ScriptExecutionFailed with its message', async () => {
    await assert.rejects(runRequest(`throw new TypeError('no tenant');`), fault(F.scriptExecutionFailed, /TypeError: no tenant/));
  });

  test('a huge error message is clipped before it reaches the client', async () => {
    await assert.rejects(runRequest(`throw new Error('x'.repeat(1000000))`), (err: unknown) => {
      assert.ok(err instanceof GatewayError && err.code === F.scriptExecutionFailed);
      assert.ok(err.message.length < 1200, `${err.message.length} characters`);
      assert.match(err.message, /1000007 characters/);
      return true;
    });
  });

  test('a script that throws a look-alike of the interrupt is an execution failure, not a timeout', async () => {
    await assert.rejects(runRequest(`throw { name: 'InternalError', message: 'interrupted' };`), fault(F.scriptExecutionFailed, /InternalError: interrupted/));
  });

  test('a script that makes request.body anything but an object → 500 ScriptExecutionFailed, not an internal error later', async () => {
    for (const value of ['"text"', '[1, 2]', 'null', '42']) {
      await assert.rejects(runRequest(`request.body = ${value};`), fault(F.scriptExecutionFailed, /request\.body must stay a JSON object/), value);
    }
  });

  test('a request body nested deeper than a client\'s may be (512 levels) → 500 ScriptExecutionFailed, the body unchanged', async () => {
    // Serializing it for the model server recursed over it: 200,000 levels overflowed the stack there, a 500 internal_error.
    const ctx = fakeContext();
    const policy = js('var o = {}; request.body.metadata = o; for (var i = 0; i < 600; i++) o = o.a = {};', { memoryLimitMb: 32 });
    await assert.rejects(Promise.resolve(policy.admit!(ctx, {})), fault(F.scriptExecutionFailed, /request\.body nests arrays and objects more than 512 levels deep/));
    assert.equal(ctx.body!.metadata, undefined);
    assert.equal(ctx.bodyChanged, false);
    await runRequest('var o = {}; request.body.metadata = o; for (var i = 0; i < 500; i++) o = o.a = {};');
  });

  test("one tenant's queued runaway scripts do not hold another tenant's script behind them all", async () => {
    // Ordered, not timed: with a queue per script served in turn, the other script runs at the first free worker.
    const spin = javaScript('spinning-tenant', { source: 'while (true) {}', timeLimit: '100ms' }, deps);
    const quick = javaScript('quick-tenant', { source: `context.setVariable('probe.ran', 'yes');`, timeLimit: ROOMY }, deps);
    const settled: string[] = [];
    const spins = Array.from({ length: 8 }, (_, i) =>
      Promise.resolve(spin.admit!(fakeContext(), {})).then(
        () => settled.push(`spin ${i}`),
        () => settled.push(`spin ${i}`),
      ),
    );
    const state: ApimState = {};
    await quick.admit!(fakeContext(), state);
    settled.push('quick');
    assert.equal(state.vars!.get('probe.ran'), 'yes');
    await Promise.all(spins);
    assert.ok(settled.indexOf('quick') <= 4, `the quick script finished after ${settled.indexOf('quick')} runaway ones: ${settled.join(', ')}`);
  });

  test("a script queued beyond its share is refused at once; another script's runs are still taken", async () => {
    const flood = javaScript('flooding-tenant', { source: 'var x = 1;', timeLimit: ROOMY }, deps);
    const other = javaScript('other-tenant', { source: 'var y = 2;', timeLimit: ROOMY }, deps);
    // Queued synchronously: the pool's workers take two, 200 wait, and the rest are refused.
    const runs = Array.from({ length: 210 }, () => Promise.resolve(flood.admit!(fakeContext(), {})).then(() => 'ok', (err: Error) => err.message));
    const taken = other.admit!(fakeContext(), {});
    const outcomes = await Promise.all(runs);
    assert.ok(outcomes.filter((o) => /overloaded/.test(o)).length >= 8, outcomes.slice(-10).join(' | '));
    await taken;
  });

  test('while(true) {} times out within its limit; another request and the event loop carry on meanwhile', async () => {
    const runaway = js('while (true) {}', { timeLimit: '300ms' });
    const started = performance.now();
    const stuck = Promise.resolve(runaway.admit!(fakeContext(), {})).then(
      () => assert.fail('a runaway script must not succeed'),
      (err) => ({ err, ms: performance.now() - started }),
    );
    const tick = new Promise<number>((r) => setTimeout(() => r(performance.now() - started), 20));
    const other = runRequest(`context.setVariable('probe.ok', 'yes');`).then(({ state }) => ({ ok: state.vars!.get('probe.ok'), ms: performance.now() - started }));
    const [s, t, o] = await Promise.all([stuck, tick, other]);
    assert.ok(t < s.ms, `the event loop answered a 20 ms timer after ${t} ms, before the runaway script ended (${s.ms} ms)`);
    assert.equal(o.ok, 'yes');
    assert.ok(o.ms < s.ms - 50, `the other script finished after ${o.ms} ms, well before the runaway one (${s.ms} ms)`);
    assert.ok(fault(F.scriptTimedOut)(s.err), String(s.err));
    // Never before its limit; the upper bound only says it ended at all (a loaded host is slow to stop a worker).
    assert.ok(s.ms >= 290 && s.ms < 5000, `timed out after ${s.ms} ms`);
  });

  test('a script allocating far beyond its memoryLimitMb → 500 ScriptExecutionFailed, out of memory; one within it runs', async () => {
    // QuickJS's own limit counted allocations, not bytes: 64 typed arrays of 1 MiB, or 100 strings of 1 MB, passed 16 MiB.
    const over = /out of memory \(over memoryLimitMb: 16\)/;
    for (const source of ['var a = []; for (var i = 0; i < 64; i++) a.push(new Uint8Array(1 << 20));', "var a = []; for (var i = 0; i < 100; i++) a.push('x'.repeat(1000000) + i);"]) {
      await assert.rejects(Promise.resolve(js(source, { memoryLimitMb: 16 }).admit!(fakeContext(), {})), fault(F.scriptExecutionFailed, over), source);
    }
    await js('var a = []; for (var i = 0; i < 12; i++) a.push(new Uint8Array(1 << 20));', { memoryLimitMb: 16 }).admit!(fakeContext(), {});
  });

  test('a script keeping 4 MiB in its globals at each run fails once past its memoryLimitMb, then starts afresh', async () => {
    const keeper = js(`var kept = (globalThis.kept = globalThis.kept || []); kept.push(new Uint8Array(4 << 20)); context.setVariable('probe.kept', kept.length);`, { memoryLimitMb: 16 });
    const outcomes: string[] = [];
    for (let i = 0; i < 24; i++) {
      const state: ApimState = {};
      outcomes.push(await Promise.resolve(keeper.admit!(fakeContext(), state)).then(() => state.vars!.get('probe.kept')!, (err: Error) => (/out of memory/.test(err.message) ? 'out of memory' : err.message)));
    }
    // Runs go to either of the pool's workers, each keeping its own globals: at most 4 × 4 MiB in each.
    assert.ok(outcomes.includes('out of memory'), outcomes.join(', '));
    assert.ok(outcomes.every((o) => o === 'out of memory' || Number(o) <= 4), outcomes.join(', '));
  });

  test('a script that keeps allocating is stopped by its memory limit (or its time limit)', async () => {
    const hog = js('var a = []; while (true) a.push({ n: Math.random(), s: "x" + Math.random() });', { memoryLimitMb: 2, timeLimit: '1s' });
    await assert.rejects(Promise.resolve(hog.admit!(fakeContext(), {})), (err: GatewayError) => {
      assert.ok(err.code === F.scriptExecutionFailed ? /out of memory/.test(err.message) : err.code === F.scriptTimedOut, err.message);
      return true;
    });
    await runRequest('// nothing');
  });
});

describe('response flow', () => {
  test('the whole answer: JSON body fields and headers changed, variables read', async () => {
    const policy = js(`response.body.choices[0].message.content = response.body.choices[0].message.content.toUpperCase();
      response.headers['x-app'] = context.getVariable('kvm.app'); delete response.headers['x-internal'];`, { flow: 'response' });
    const ctx = fakeContext();
    const flow = policy.respond!(ctx, { vars: new Map([['kvm.app', 'shop']]) }, 200)!;
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-internal': 'secret' };
    flow.headers!(200, headers);
    const body = await flow.body!(Buffer.from(JSON.stringify({ choices: [{ message: { content: 'hello' } }] })), 200);
    assert.equal(JSON.parse(body.toString()).choices[0].message.content, 'HELLO');
    assert.deepEqual(headers, { 'content-type': 'application/json', 'x-app': 'shop' });
  });

  test('an output shaped to make the gateway allocate (response.body {"length": 1e8}) → 500 ScriptExecutionFailed, not a 100 MB answer', async () => {
    // Buffer.from took the array-like and allocated and read 100 MB on the event loop (8 s), after a 50 ms, 1 MiB script.
    await assert.rejects(runResponse(handingBack({ responseBody: { length: 100_000_000 } }), { memoryLimitMb: 1 }), fault(F.scriptExecutionFailed, /response\.body must stay JSON or text/));
  });

  test('output the gateway cannot use → 500 ScriptExecutionFailed, never an internal error', async () => {
    const cases: [string, string, RegExp][] = [
      ['deleted body', 'delete response.body;', /response\.body must stay JSON or text/],
      ['undefined body', 'response.body = undefined;', /response\.body must stay JSON or text/],
      ['function body', 'response.body = function () {};', /response\.body must stay JSON or text/],
      ['array-like header', "response.headers['x-a'] = { length: 5 };", /response\.headers\['x-a'\] must be a string/],
      ['headers not an object', 'response.headers = [];', /response\.headers must be an object/],
      ['array body', handingBack({ responseBody: [1, 2, 3] }), /response\.body must stay JSON or text/],
      ['request body not text', handingBack({ requestBody: { length: 5 } }), /request\.body must stay a JSON object/],
      ['variable not text', handingBack({ variables: { 'probe.x': { length: 5 } } }), /flow variables\['probe\.x'\] must be a string/],
      ['output not an object', "JSON.stringify = function () { return '[]'; };", /its output is not a JSON object/],
    ];
    for (const [what, source, message] of cases) {
      const state: ApimState = {};
      const headers: Record<string, string> = { 'x-kept': 'yes' };
      await assert.rejects(runResponse(source, {}, state, headers), fault(F.scriptExecutionFailed, message), what);
      assert.deepEqual(headers, { 'x-kept': 'yes' }, what);
      assert.equal(state.vars, undefined, what);
    }
  });

  test('an output over 32 Mi characters is refused in the worker → 500 ScriptExecutionFailed', async () => {
    const source = `response.body = 'x'.repeat(${33 * 1024 * 1024});`;
    // Building and serializing 33 Mi characters in the sandbox took 3 s on a busy host and over 5 s on a loaded one.
    await assert.rejects(runResponse(source, { memoryLimitMb: 256, timeLimit: '10s' }), fault(F.scriptExecutionFailed, /its output is \d+ characters of JSON, over the 33554432/));
  });

  test('an untouched answer keeps its bytes', async () => {
    const flow = js('var s = response.status;', { flow: 'response' }).respond!(fakeContext(), {}, 200)!;
    flow.headers!(200, {});
    const original = Buffer.from('{ "spaced":  true }');
    assert.equal(await flow.body!(original, 200), original);
  });
});

describe('sandbox worker', () => {
  test('compiling a script counts against its time limit: top-level code that never ends is interrupted, the worker answers', async () => {
    const worker = spawnWorker(import.meta.url, 'sandbox-worker');
    try {
      const [ready] = (await once(worker, 'message')) as [WorkerMessage];
      assert.ok('ready' in ready);
      // The load-time check refuses such a source; the worker must hold its deadline whatever it is given.
      const job: SandboxJob = { id: 1, script: { id: 'top-level-loop', source: '}; for (;;) {} globalThis.escaped = function () {', memoryLimitBytes: 16 << 20 }, timeLimitMs: 200, input: '{}' };
      worker.postMessage(job);
      let timer: NodeJS.Timeout | undefined;
      const reply = await Promise.race([
        once(worker, 'message').then(([m]) => m as WorkerMessage),
        new Promise<'no answer'>((r) => (timer = setTimeout(() => r('no answer'), 5000))),
      ]);
      clearTimeout(timer);
      assert.deepEqual(reply, { id: 1, ok: false, kind: 'timeout', message: 'interrupted' });
    } finally {
      await worker.terminate();
    }
  });
});
