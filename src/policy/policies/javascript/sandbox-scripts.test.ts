// The scripts a sandbox worker keeps: each one's WebAssembly memory stays within its memory limit (plus QuickJS's own
// needs), whatever the script allocates, in one run or kept across runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SandboxScripts } from './sandbox-scripts.js';
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
