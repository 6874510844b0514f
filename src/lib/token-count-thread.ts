// Where long texts' tokens are counted. gpt-tokenizer counts ~5 MB of prose a second: a 9 MB prompt held the event
// loop for 1.7 s, and every tenant's requests and the endpoints' metric scrapes stalled behind one client's body (a
// quota's budget did not help: the quickstart's 2M tokens are ~9 MB of prose, and a refused prompt cost as much).
// Texts longer than OFF_LOOP_CHARS are counted in a worker thread instead, by the same function, so the counts are
// the same; short ones, nearly all, are counted in process, where a count costs less than the message to a thread.
import type { CloseRequest } from './answer-calls.js';
import { FairQueue, type Queued } from './fair-queue.js';
import { OnDemandWorker } from './on-demand-worker.js';
import { spawnWorker } from './spawn-worker.js';
import { countTextTokens, keepTextTokens, knownTextTokens, type CountWalk } from './tokenizer.js';
import type { CountAnswer, CountRequest } from './token-count-thread-protocol.js';

/** 64 Ki characters: ~15 ms of counting at most on the event loop. */
export const OFF_LOOP_CHARS = 64 * 1024;
/** An idle thread is closed, so a gateway that counts a long prompt once holds no thread for it. */
const IDLE_MS = 60_000;
const CLOSE_WAIT_MS = 2000;

const thread = new OnDemandWorker<CountRequest | CloseRequest, CountAnswer>({
  spawn: () => spawnWorker(import.meta.url, 'token-count-thread-worker'),
  name: 'token count',
  closeRequest: { type: 'close' },
  idleMs: IDLE_MS,
  closeWaitMs: CLOSE_WAIT_MS,
});

interface Waiting extends Queued {
  text: string;
  budget: number;
  resolve(tokens: number): void;
  reject(err: Error): void;
}

/**
 * Long texts waiting for the thread, a queue per tenant served in turn, one text at a time in the thread: one tenant's
 * stream of 9 MB prompts must not hold every other tenant's long prompts behind all of its own.
 */
const waiting = new FairQueue<Waiting>();
let counting = false;

/**
 * The walk's total, each text counted as countTextTokens counts it: a number when every text was short or counted
 * lately, a promise when a long one went to the thread (so a prompt of short texts costs no await). `tenant` (the
 * request's fairness id) is whose turn a long text waits for.
 */
export function countWalk(walk: CountWalk, tenant = ''): number | Promise<number> {
  return resume(walk, walk.next(), tenant);
}

function resume(walk: CountWalk, step: IteratorResult<{ text: string; budget: number }, number>, tenant: string): number | Promise<number> {
  while (!step.done) {
    const { text, budget } = step.value;
    const n = text.length > OFF_LOOP_CHARS ? knownTextTokens(text, budget) : countTextTokens(text, budget);
    if (n === undefined) return countOffLoop(text, budget, tenant).then((counted) => resume(walk, walk.next(counted), tenant));
    step = walk.next(n);
  }
  return step.value;
}

function countOffLoop(text: string, budget: number, tenant: string): Promise<number> {
  return new Promise((resolve, reject) => {
    waiting.push({ priority: 0, fairnessId: tenant, text, budget, resolve, reject });
    countNext();
  });
}

function countNext(): void {
  if (counting) return;
  const next = waiting.shift();
  if (!next) return;
  counting = true;
  thread
    .call({ type: 'count', text: next.text, budget: next.budget })
    .then((answer) => {
      if (answer.type === 'failed') throw new Error(answer.message);
      keepTextTokens(next.text, next.budget, answer.tokens);
      next.resolve(answer.tokens);
    })
    .catch((err: Error) => next.reject(err))
    .finally(() => {
      counting = false;
      countNext();
    });
}

/** Ends the token-count thread, if one runs; a later long text starts another. */
export function closeTokenCountThread(): Promise<void> {
  return thread.close();
}
