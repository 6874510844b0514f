// The thread's side of WorkerCalls: each numbered request answered by a function, in turn; a request it throws on
// answered as failed (that call fails, the thread goes on); the close request ends the thread.
import { parentPort } from 'node:worker_threads';
import type { Numbered } from './worker-calls.js';

/** Asks the thread to finish and exit (OnDemandWorker's closeRequest). Nothing answers it. */
export type CloseRequest = { type: 'close' };

/** The answer to a request the thread failed on; the caller throws `message`. */
export type FailedCall = { type: 'failed'; seq: number; message: string };

/**
 * @param answer the answer to one request, without its number
 * @example answerCalls<CountRequest, Counted>((r) => ({ type: 'counted', tokens: count(r.text) }));
 */
export function answerCalls<Request extends object, Answer extends { seq: number }>(answer: (request: Request) => Omit<Answer, 'seq'>): void {
  const port = parentPort!;
  port.on('message', (message: Numbered<Request> | CloseRequest) => {
    if ((message as CloseRequest).type === 'close') return port.close();
    const { seq } = message as Numbered<Request>;
    let reply: Answer | FailedCall;
    try {
      reply = { ...answer(message as Numbered<Request>), seq } as Answer;
    } catch (err) {
      reply = { type: 'failed', seq, message: err instanceof Error ? err.message : String(err) };
    }
    port.postMessage(reply);
  });
}
