// Where long prompts are scanned. The detectors are linear, but at ~1 µs a character an 8 MB prompt held the event
// loop for 10 s: every request in flight stalled behind one client's body, and endpoint metrics went stale. Prompts
// longer than OFF_LOOP_CHARS are scanned, and redacted, in a worker thread instead (a million findings redacted on
// the loop took seconds too); short ones, nearly all, stay in process, where a scan costs less than the message to a
// thread would.
import type { CloseRequest } from '../../lib/answer-calls.js';
import { spawnWorker } from '../../lib/spawn-worker.js';
import { OnDemandWorker } from '../../lib/on-demand-worker.js';
import type { ScanAnswer, ScanRequest } from './scan-thread-protocol.js';
import type { ScanText, TextVerdict } from './scanner.js';

/** 64 Ki characters: ~50 ms of scanning at most on the event loop. */
export const OFF_LOOP_CHARS = 64 * 1024;
/** An idle thread is closed, so a gateway that scans a long prompt once holds no thread for it. */
const IDLE_MS = 60_000;
const CLOSE_WAIT_MS = 2000;

const thread = new OnDemandWorker<ScanRequest | CloseRequest, ScanAnswer>({
  spawn: () => spawnWorker(import.meta.url, 'scan-thread-worker'),
  name: 'prompt scan',
  closeRequest: { type: 'close' },
  idleMs: IDLE_MS,
  closeWaitMs: CLOSE_WAIT_MS,
});

/** The verdict on each text, as `new Scanner(spec.filters).judge(text)` gives it, reached off the event loop. */
export async function judgeOffLoop(spec: unknown, texts: ScanText[]): Promise<TextVerdict[]> {
  const answer = await thread.call({ type: 'scan', spec, texts });
  if (answer.type === 'failed') throw new Error(answer.message);
  return answer.verdicts;
}

/** Ends the scan thread, if one runs; a later long prompt starts another. */
export function closeScanThread(): Promise<void> {
  return thread.close();
}
