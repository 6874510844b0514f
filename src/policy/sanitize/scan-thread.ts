// Where long prompts are scanned. The detectors are linear, but at ~1 µs a character an 8 MB prompt held the event
// loop for 10 s: every request in flight stalled behind one client's body, and endpoint metrics went stale. Prompts
// longer than OFF_LOOP_CHARS are scanned, and redacted, in a worker thread instead (a million findings redacted on
// the loop took seconds too); short ones, nearly all, stay in process, where a scan costs less than the message to a
// thread would.
import type { Worker } from 'node:worker_threads';
import { spawnWorker } from '../../lib/spawn-worker.js';
import { WorkerCalls } from '../../lib/worker-calls.js';
import type { ScanAnswer, ScanRequest } from './scan-thread-protocol.js';
import type { TextVerdict } from './scanner.js';

/** 64 Ki characters: ~50 ms of scanning at most on the event loop. */
export const OFF_LOOP_CHARS = 64 * 1024;
/** An idle thread is closed, so a gateway that scans a long prompt once holds no thread for it. */
const IDLE_MS = 60_000;
const CLOSE_WAIT_MS = 2000;

let thread: { worker: Worker; calls: WorkerCalls<ScanRequest, ScanAnswer> } | undefined;
let running = 0;
let idle: NodeJS.Timeout | undefined;

/** The verdict on each text, as `new Scanner(spec.filters).judge(text)` gives it, reached off the event loop. */
export async function judgeOffLoop(spec: unknown, texts: string[]): Promise<TextVerdict[]> {
  clearTimeout(idle);
  // A thread that exited (crashed, or closed when idle) failed only the scans it had; a new one takes the next.
  if (!thread || thread.calls.exited) {
    const worker = spawnWorker(import.meta.url, 'scan-thread-worker');
    thread = { worker, calls: new WorkerCalls(worker, { name: 'prompt scan' }) };
  }
  const { worker, calls } = thread;
  // WorkerCalls lets a thread not keep the process alive; a scan someone awaits must.
  if (running++ === 0) worker.ref();
  try {
    const answer = await calls.call({ type: 'scan', spec, texts });
    if (answer.type === 'failed') throw new Error(answer.message);
    return answer.verdicts;
  } finally {
    if (--running === 0) {
      worker.unref();
      idle = setTimeout(() => void closeScanThread(), IDLE_MS).unref();
    }
  }
}

/** Ends the scan thread, if one runs; a later long prompt starts another. */
export async function closeScanThread(): Promise<void> {
  clearTimeout(idle);
  const t = thread;
  thread = undefined;
  await t?.calls.close({ type: 'close' }, CLOSE_WAIT_MS);
}
