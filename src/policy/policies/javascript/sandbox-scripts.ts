// The scripts one sandbox worker keeps compiled, each in a QuickJS WebAssembly module of its own whose memory is capped
// by the script's memory limit. QuickJS's own limit cannot bound bytes in this build: without malloc_usable_size it
// counts allocations, so a "16 MiB" script kept over a GiB of a WebAssembly memory every script of the worker shared,
// which never shrinks. A capped memory fails the allocation instead (QuickJS's "out of memory"), one script's heap
// cannot crowd out another's, and a disposed script's memory is freed with its module.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import {
  newQuickJSWASMModuleFromVariant,
  newVariant,
  RELEASE_SYNC,
  type QuickJSContext,
  type QuickJSHandle,
  type QuickJSRuntime,
} from 'quickjs-emscripten';
import { PRELUDE, scriptProgram } from './sandbox-prelude.js';
import type { SandboxJob, ScriptRef } from './sandbox-protocol.js';

interface Compiled {
  memory: WebAssembly.Memory;
  /** What `memory` may grow to: what the script counts against MAX_RESIDENT_BYTES. */
  cap: number;
  runtime: QuickJSRuntime;
  vm: QuickJSContext;
  /** The prelude's entry points, once the script is compiled (at its first run, under that run's deadline). */
  entry: Entry | null;
}

/** `invoke` runs the script on a run's input; `output` hands back its changes once its Promise jobs have run. */
interface Entry {
  invoke: QuickJSHandle;
  output: QuickJSHandle;
}

/** Scripts kept compiled per worker; the least recently used beyond this are disposed. */
const MAX_SCRIPTS = 32;
/**
 * What the kept scripts' memories may grow to together: beyond this the least recently used are disposed, so a worker
 * holds at most this much whatever its scripts do.
 */
const MAX_RESIDENT_BYTES = 1024 * 1024 * 1024;
const STACK_BYTES = 512 * 1024;
const PAGE_BYTES = 64 * 1024;
/** What the module holds besides a script's heap (its C stack, data and QuickJS's own start-up; measured 5.3 MiB). */
const MODULE_OVERHEAD_BYTES = 6 * 1024 * 1024;
/** The least memory the module accepts (the minimum it declares). */
const MIN_MODULE_BYTES = 16 * 1024 * 1024;

/**
 * QuickJS's WebAssembly (RELEASE_SYNC's, found from quickjs-emscripten, whose dependency it is), compiled once per
 * thread: instantiated from bytes for each script, it was compiled and optimised again each time (20 ms a script).
 */
let compiled: Promise<WebAssembly.Module> | undefined;
const quickJSWasm = () =>
  (compiled ??= readFile(createRequire(import.meta.resolve('quickjs-emscripten')).resolve('@jitl/quickjs-wasmfile-release-sync/wasm')).then((bytes) => WebAssembly.compile(bytes)));

/** The cap on the WebAssembly memory of a script limited to `limitBytes`. */
function moduleMemoryBytes(limitBytes: number): number {
  return Math.max(MIN_MODULE_BYTES, Math.ceil((limitBytes + MODULE_OVERHEAD_BYTES) / PAGE_BYTES) * PAGE_BYTES);
}

export class ScriptError extends Error {
  constructor(readonly kind: 'timeout' | 'error', message: string) {
    super(message);
  }
}

/** A script's error message goes back to the client: a script could make it as long as its memory allows. */
const MAX_MESSAGE = 1024;
const clip = (text: string) => (text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}… (${text.length} characters)` : text);
/**
 * The most a run may hand back (its changes as JSON), which the event loop parses: room for a request and an answer of
 * the default server.maxBodyBytes (10 MiB) each, JSON-escaped. A script allowed 256 MiB could otherwise hand back
 * 200 MB, parsed on the event loop at ~6 ms a MiB while every request waits.
 */
const MAX_OUTPUT_CHARS = 32 * 1024 * 1024;

/** `deadline`: when the run's interrupt handler fires (Infinity without one). */
function errorOf(c: Compiled, handle: QuickJSHandle, script: ScriptRef, deadline = Infinity): ScriptError {
  const e = c.vm.dump(handle) as { name?: string; message?: string } | string | null;
  handle.dispose();
  // QuickJS throws null when the heap has no room left for the error it means to throw (a script may throw null
  // itself: told apart by a memory that has grown as far as it can, emscripten growing it by 5% at least).
  if (e === null && c.memory.buffer.byteLength * 1.05 > c.cap) return outOfMemory(script);
  if (typeof e !== 'object' || e === null) return new ScriptError('error', clip(`uncaught ${String(e)}`));
  // A script can throw a look-alike of QuickJS's interrupt ({name: 'InternalError', message: 'interrupted'}): only
  // a run past its deadline was interrupted.
  if (e.name === 'InternalError' && e.message === 'interrupted' && Date.now() >= deadline) return new ScriptError('timeout', 'interrupted');
  if (e.name === 'InternalError' && e.message === 'out of memory') return outOfMemory(script);
  return new ScriptError('error', clip(`${String(e.name ?? 'Error')}: ${String(e.message ?? '')}`));
}

const outOfMemory = (script: ScriptRef) =>
  new ScriptError('error', `InternalError: out of memory (over memoryLimitMb: ${script.memoryLimitBytes / (1024 * 1024)})`);

export class SandboxScripts {
  /** In use order, least recent first. */
  readonly #compiled = new Map<string, Compiled>();

  /** Runs the job's script (compiled on first use) on its input; throws a ScriptError when the script fails. */
  async run(job: SandboxJob): Promise<string> {
    const { script } = job;
    let c = this.#compiled.get(script.id);
    if (c) this.#compiled.delete(script.id);
    else c = await this.#instantiate(script);
    this.#compiled.set(script.id, c);
    // Started once the module is there: instantiating it is tollgate's work, not the script's. Compiling the script
    // counts (evaluating it must not outlast its time limit).
    const deadline = Date.now() + job.timeLimitMs;
    let interrupted = false;
    c.runtime.setInterruptHandler(() => (interrupted ||= Date.now() >= deadline));
    try {
      c.entry ??= compile(c, script, deadline);
      const arg = c.vm.newString(job.input);
      const invoked = c.vm.callFunction(c.entry.invoke, c.vm.undefined, arg);
      arg.dispose();
      if (invoked.error) throw errorOf(c, invoked.error, script, deadline);
      invoked.value.dispose();
      // Code after an `await` and in `then` callbacks runs now, under the same deadline: QuickJS only queues it, and
      // left queued it never ran (the script's changes were read without it) and held its run's request meanwhile.
      const jobs = c.runtime.executePendingJobs();
      if (jobs.error) throw errorOf(c, jobs.error, script, deadline);
      // QuickJS makes an interrupted callback a rejected Promise and goes on with the queue: the run is over all the same.
      if (interrupted) throw new ScriptError('timeout', 'interrupted');
      const result = c.vm.callFunction(c.entry.output, c.vm.undefined);
      if (result.error) throw errorOf(c, result.error, script, deadline);
      const output = c.vm.getString(result.value);
      result.value.dispose();
      if (output.length > MAX_OUTPUT_CHARS) throw new ScriptError('error', `its output is ${output.length} characters of JSON, over the ${MAX_OUTPUT_CHARS} a script may hand back`);
      return output;
    } catch (err) {
      // A script that did not compile, or whose heap may be half-built (after an interrupt, running out of memory or
      // stack, or its module failing), or that failed with Promise jobs still queued (the next run would run them):
      // dropped with its module, compiled afresh next time.
      if (!c.entry || !(err instanceof ScriptError) || err.kind === 'timeout' || /out of memory|stack overflow/.test(err.message) || c.runtime.hasPendingJob()) {
        this.#compiled.delete(script.id);
      }
      throw err;
    } finally {
      c.runtime.removeInterruptHandler();
    }
  }

  /** What the kept scripts' WebAssembly memories hold now. */
  wasmBytes(): number {
    let total = 0;
    for (const c of this.#compiled.values()) total += c.memory.buffer.byteLength;
    return total;
  }

  /** A module for the script with its memory capped, after making room for that cap among the kept ones. */
  async #instantiate(script: ScriptRef): Promise<Compiled> {
    const cap = moduleMemoryBytes(script.memoryLimitBytes);
    let resident = cap;
    for (const kept of this.#compiled.values()) resident += kept.cap;
    // Oldest first. A script's memory goes with its module: dropping it is all there is to do.
    for (const [id, kept] of this.#compiled) {
      if (this.#compiled.size < MAX_SCRIPTS && resident <= MAX_RESIDENT_BYTES) break;
      resident -= kept.cap;
      this.#compiled.delete(id);
    }
    const memory = new WebAssembly.Memory({ initial: MIN_MODULE_BYTES / PAGE_BYTES, maximum: cap / PAGE_BYTES });
    const QuickJS = await newQuickJSWASMModuleFromVariant(newVariant(RELEASE_SYNC, { wasmModule: quickJSWasm, wasmMemory: memory }));
    // QuickJS's own limit still refuses at once a single allocation beyond it.
    const runtime = QuickJS.newRuntime({ memoryLimitBytes: script.memoryLimitBytes, maxStackSizeBytes: STACK_BYTES });
    return { memory, cap, runtime, vm: runtime.newContext(), entry: null };
  }
}

function compile(c: Compiled, script: ScriptRef, deadline: number): Entry {
  for (const code of [PRELUDE, scriptProgram(script.source)]) {
    const r = c.vm.evalCode(code, 'policy.js');
    if (r.error) throw errorOf(c, r.error, script, deadline);
    r.value.dispose();
  }
  return { invoke: c.vm.getProp(c.vm.global, '__invoke'), output: c.vm.getProp(c.vm.global, '__output') };
}

/**
 * Runs a script once in a module made for it and dropped: quickjs-emscripten's code is loaded and QuickJS's functions
 * are compiled (V8 compiles each at its first call, for every module of the thread), so that a worker's first script
 * does not pay for them. It did: ~150 ms with tsx on a busy host, which with the module's making passed a 200 ms limit.
 */
export async function warmUp(): Promise<void> {
  const input = JSON.stringify({ flow: 'request', variables: {}, request: { method: 'GET', path: '/', url: '/', headers: { a: 'b' }, body: { n: 1 } } });
  const source = "context.setVariable('warm.up', request.headers.a); request.body.n++;";
  await new SandboxScripts().run({ id: 0, script: { id: 'warm-up', source, memoryLimitBytes: MIN_MODULE_BYTES }, timeLimitMs: 10_000, input });
}
