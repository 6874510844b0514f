// The scripts a sandbox worker keeps: each one's WebAssembly memory stays within its memory limit (plus QuickJS's own
// needs), whatever the script allocates, in one run or kept across runs.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SandboxScripts, warmUp } from './sandbox-scripts.js';
import type { SandboxJob } from './sandbox-protocol.js';

const MiB = 1024 * 1024;
/** A 16 MiB script's memory: its limit and the 6 MiB QuickJS needs itself. */
const CAP_16 = 22 * MiB;
const INPUT = JSON.stringify({ flow: 'request', variables: {}, request: { method: 'POST', path: '/', url: '/', headers: {}, body: {} } });

let seq = 0;
const job = (id: string, source: string, memoryLimitMb = 16): SandboxJob => ({ id: ++seq, script: { id, source, memoryLimitBytes: memoryLimitMb * MiB }, timeLimitMs: 5000, input: INPUT });
const outcome = (scripts: SandboxScripts, j: SandboxJob) =>
  scripts.run(j).then(
    (out) => (JSON.parse(out) as { variables: Record<string, string> }).variables['probe.n'],
    (err: Error) => err.message,
  );

test('scripts allocating far beyond 16 MiB run out of memory; caught, their memory stays within their caps', async () => {
  const scripts = new SandboxScripts();
  const hogs = {
    typed: 'var a = []; for (var i = 0; i < 64; i++) a.push(new Uint8Array(1 << 20));',
    strings: "var a = []; for (var i = 0; i < 100; i++) a.push('x'.repeat(1000000) + i);",
    arrays: 'var a = []; for (;;) a.push(new Array(100000).fill(1));',
    objects: 'var a = []; for (;;) a.push({ x: 1, y: [1, 2, 3] });',
  };
  let kept = 0;
  for (const [name, source] of Object.entries(hogs)) {
    assert.equal(await outcome(scripts, job(name, source)), 'InternalError: out of memory (over memoryLimitMb: 16)', name);
    // The same, catching it: the run succeeds and the script is kept, with all it could allocate.
    await outcome(scripts, job(`${name} caught`, `var a = []; try { ${source} } catch (e) {} context.setVariable('probe.n', a.length);`));
    kept++;
    assert.ok(scripts.wasmBytes() <= kept * CAP_16, `${name}: ${kept} scripts kept in ${scripts.wasmBytes() / MiB} MiB`);
  }
});

test('a script keeping 4 MiB a run in its globals fails at the fifth and starts afresh; its memory never passes its cap', async () => {
  const scripts = new SandboxScripts();
  const keeper = `var kept = (globalThis.kept = globalThis.kept || []); kept.push(new Uint8Array(4 << 20)); context.setVariable('probe.n', kept.length);`;
  const seen: string[] = [];
  for (let i = 0; i < 12; i++) {
    seen.push(await outcome(scripts, job('keeper', keeper)));
    assert.ok(scripts.wasmBytes() <= CAP_16, `run ${i}: ${scripts.wasmBytes() / MiB} MiB`);
  }
  const oom = 'InternalError: out of memory (over memoryLimitMb: 16)';
  assert.deepEqual(seen, ['1', '2', '3', '4', oom, '1', '2', '3', '4', oom, '1', '2']);
});

test('a script throwing null with room to spare is not reported as out of memory', async () => {
  const scripts = new SandboxScripts();
  assert.equal(await outcome(scripts, job('thrower', 'throw null;', 64)), 'uncaught null');
});

test('a stateless script run again and again on a 1 MB request never runs out of its 16 MiB', async () => {
  // Each run's request stayed in the heap (the prelude's context held itself in a cycle reference counting never
  // frees): a run failed out of memory every ~16 MiB / request size runs, the script's globals lost with it.
  const scripts = new SandboxScripts();
  const body = { model: 'm', messages: [{ role: 'system', content: 'y'.repeat(1_000_000) }] };
  const input = JSON.stringify({ flow: 'request', variables: { 'app.name': 'acme' }, request: { method: 'POST', path: '/', url: '/', headers: {}, body } });
  const source = "request.headers['x-tenant'] = context.getVariable('app.name'); context.removeVariable('probe.none'); context.setVariable('probe.n', 'ok');";
  const seen = new Set<string>();
  for (let i = 0; i < 60; i++) seen.add(await outcome(scripts, { ...job('stateless', source), input }));
  assert.deepEqual([...seen], ['ok']);
});

describe('Promises and async functions', () => {
  // QuickJS only queues what follows an `await` or sits in a `then` callback: left queued, it never ran and the
  // script's changes were read without it.
  const cases: [string, string, string][] = [
    ['code after await runs before the changes are read', "(async function () { await null; context.setVariable('probe.n', 'after await'); })();", 'after await'],
    ['then callbacks run, chained ones too', "Promise.resolve(1).then(function (v) { return v + 1; }).then(function (v) { context.setVariable('probe.n', 'then ' + v); });", 'then 2'],
    ['a returned Promise that rejects fails the run, as a throw does', "return (async function () { await null; throw new TypeError('late'); })();", 'TypeError: late'],
    ['a returned Promise that cannot settle fails the run', 'return new Promise(function () {});', 'Error: the Promise the script returned never settled (there are no timers or I/O to settle it)'],
  ];
  for (const [name, source, expected] of cases) {
    test(name, async () => assert.equal(await outcome(new SandboxScripts(), job(name, source)), expected));
  }

  // QuickJS makes an interrupted callback a rejected Promise: the run looked like a success. (Warmed up first, so
  // that compiling the script cold does not use up the 100 ms.)
  before(() => warmUp());
  for (const [name, source] of [
    ['a callback that never ends', 'Promise.resolve().then(function () { for (;;) {} });'],
    ['callbacks that queue themselves for ever', '(function again() { Promise.resolve().then(again); })();'],
  ]) {
    test(`${name}: stopped by the time limit`, async () => {
      assert.equal(await outcome(new SandboxScripts(), { ...job(name, source), timeLimitMs: 100 }), 'interrupted');
    });
  }

  test("a failed run's queued callbacks never run in a later run", async () => {
    const scripts = new SandboxScripts();
    const source = `if (request.body.fail) { Promise.resolve().then(function () { globalThis.stale = 'stale'; }); throw new Error('failed'); }
      context.setVariable('probe.n', String(globalThis.stale));`;
    const failing = INPUT.replace('"body":{}', '"body":{"fail":true}');
    assert.equal(await outcome(scripts, { ...job('stale', source), input: failing }), 'Error: failed');
    assert.deepEqual([await outcome(scripts, job('stale', source)), await outcome(scripts, job('stale', source))], ['undefined', 'undefined']);
  });
});
