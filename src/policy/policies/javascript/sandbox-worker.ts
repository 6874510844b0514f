// A sandbox worker: runs the pool's jobs one at a time in QuickJS (WebAssembly, sandbox-scripts.ts), with no Node
// globals, file system or network. The pool terminates the whole worker if a run outlives its deadline anyway (some
// allocation paths never check it).
import { parentPort } from 'node:worker_threads';
import { SandboxScripts, ScriptError, warmUp } from './sandbox-scripts.js';
import type { SandboxJob, SandboxReply } from './sandbox-protocol.js';

await warmUp();
const scripts = new SandboxScripts();

parentPort!.on('message', (job: SandboxJob) => {
  void scripts.run(job).then(
    (output): SandboxReply => ({ id: job.id, ok: true, output }),
    (err: Error): SandboxReply => ({ id: job.id, ok: false, kind: err instanceof ScriptError ? err.kind : 'error', message: err.message }),
  ).then((reply) => parentPort!.postMessage(reply));
});
parentPort!.postMessage({ ready: true });
