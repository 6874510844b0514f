// A sandbox worker: QuickJS (WebAssembly) with no Node globals, file system or network. Each script gets its own
// QuickJS runtime with its memory limit, compiled on first use and kept; a CPU deadline interrupts a run. The pool
// terminates the whole worker if a run outlives its deadline anyway (some allocation paths never check it).
import { parentPort } from 'node:worker_threads';
import { getQuickJS, shouldInterruptAfterDeadline, type QuickJSContext, type QuickJSHandle, type QuickJSRuntime } from 'quickjs-emscripten';
import { PRELUDE, scriptProgram } from './sandbox-prelude.js';
import type { SandboxJob, SandboxReply, ScriptRef } from './sandbox-protocol.js';

interface Compiled {
  runtime: QuickJSRuntime;
  vm: QuickJSContext;
  invoke: QuickJSHandle;
  /** Its memory limit: what it counts against MAX_RESIDENT_BYTES. */
  bytes: number;
}

/** Scripts kept compiled per worker; the least recently used beyond this are disposed. */
const MAX_SCRIPTS = 32;
/**
 * What the kept scripts' memory limits may add up to. Every runtime of a worker lives in one WebAssembly memory
 * (at most 2 GiB, never shrinking): 31 scripts holding 64 MiB each left none for another tenant's 16 MiB script.
 * Beyond this the least recently used are disposed, so what the kept ones can hold always leaves room.
 */
const MAX_RESIDENT_BYTES = 1024 * 1024 * 1024;
const STACK_BYTES = 512 * 1024;

const QuickJS = await getQuickJS();
const compiled = new Map<string, Compiled>();

class ScriptError extends Error {
  constructor(readonly kind: 'timeout' | 'error', message: string) {
    super(message);
  }
}

/** A script's error message goes back to the client: a script could make it as long as its memory allows (20 MB). */
const MAX_MESSAGE = 1024;
const clip = (text: string) => (text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}… (${text.length} characters)` : text);

/** `deadline`: when the run's interrupt handler fires (Infinity without one). */
function errorOf(vm: QuickJSContext, handle: QuickJSHandle, deadline = Infinity): ScriptError {
  const e = vm.dump(handle) as { name?: string; message?: string } | string;
  handle.dispose();
  if (typeof e !== 'object' || e === null) return new ScriptError('error', clip(`uncaught ${String(e)}`));
  // A script can throw a look-alike of QuickJS's interrupt ({name: 'InternalError', message: 'interrupted'}): only
  // a run past its deadline was interrupted.
  if (e.name === 'InternalError' && e.message === 'interrupted' && Date.now() >= deadline) return new ScriptError('timeout', 'interrupted');
  return new ScriptError('error', clip(`${String(e.name ?? 'Error')}: ${String(e.message ?? '')}`));
}

function dispose(id: string): void {
  const c = compiled.get(id);
  if (!c) return;
  compiled.delete(id);
  try {
    c.invoke.dispose();
    c.vm.dispose();
    c.runtime.dispose();
  } catch {
    // A runtime that cannot be freed leaves the module in doubt: start over in a fresh worker.
    process.exit(1);
  }
}

/** `deadline`: the run's, which compiling counts against (evaluating the script must not outlast its time limit). */
function compile(script: ScriptRef, deadline: number): Compiled {
  let resident = script.memoryLimitBytes;
  for (const kept of compiled.values()) resident += kept.bytes;
  // Oldest first (Map order is use order): make room before the new runtime allocates anything.
  for (const [id, kept] of compiled) {
    if (compiled.size < MAX_SCRIPTS && resident <= MAX_RESIDENT_BYTES) break;
    resident -= kept.bytes;
    dispose(id);
  }
  const runtime = QuickJS.newRuntime({ memoryLimitBytes: script.memoryLimitBytes, maxStackSizeBytes: STACK_BYTES });
  const vm = runtime.newContext();
  runtime.setInterruptHandler(shouldInterruptAfterDeadline(deadline));
  for (const code of [PRELUDE, scriptProgram(script.source)]) {
    const r = vm.evalCode(code, 'policy.js');
    if (r.error) {
      const err = errorOf(vm, r.error, deadline);
      vm.dispose();
      runtime.dispose();
      throw err;
    }
    r.value.dispose();
  }
  const c = { runtime, vm, invoke: vm.getProp(vm.global, '__invoke'), bytes: script.memoryLimitBytes };
  compiled.set(script.id, c);
  return c;
}

function run(job: SandboxJob): string {
  let c = compiled.get(job.script.id);
  const deadline = Date.now() + job.timeLimitMs;
  if (c) {
    compiled.delete(job.script.id);
    compiled.set(job.script.id, c);
    c.runtime.setInterruptHandler(shouldInterruptAfterDeadline(deadline));
  } else c = compile(job.script, deadline);
  const { runtime, vm, invoke } = c;
  const arg = vm.newString(job.input);
  const result = vm.callFunction(invoke, vm.undefined, arg);
  arg.dispose();
  runtime.removeInterruptHandler();
  if (result.error) {
    const err = errorOf(vm, result.error, deadline);
    // After an interrupt, running out of memory or the stack, the script's heap may be half-built: start it afresh.
    if (err.kind === 'timeout' || /out of memory|stack overflow/.test(err.message)) dispose(job.script.id);
    throw err;
  }
  const output = vm.getString(result.value);
  result.value.dispose();
  return output;
}

parentPort!.on('message', (job: SandboxJob) => {
  let reply: SandboxReply;
  try {
    reply = { id: job.id, ok: true, output: run(job) };
  } catch (err) {
    reply = err instanceof ScriptError ? { id: job.id, ok: false, kind: err.kind, message: err.message } : { id: job.id, ok: false, kind: 'error', message: (err as Error).message };
  }
  parentPort!.postMessage(reply);
});
parentPort!.postMessage({ ready: true });
