// Where long texts' tokens are counted. gpt-tokenizer counts ~5 MB of prose a second: a 9 MB prompt held the event
// loop for 1.7 s, and every tenant's requests and the endpoints' metric scrapes stalled behind one client's body (a
// quota's budget did not help: the quickstart's 2M tokens are ~9 MB of prose, and a refused prompt cost as much).
// Texts longer than OFF_LOOP_CHARS are counted in a worker thread instead, by the same function, so the counts are
// the same; short ones, nearly all, are counted in process, where a count costs less than the message to a thread.
import type { CloseRequest } from './answer-calls.js';
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

/**
 * The walk's total, each text counted as countTextTokens counts it: a number when every text was short or counted
 * lately, a promise when a long one went to the thread (so a prompt of short texts costs no await).
 */
export function countWalk(walk: CountWalk): number | Promise<number> {
  return resume(walk, walk.next());
}

function resume(walk: CountWalk, step: IteratorResult<{ text: string; budget: number }, number>): number | Promise<number> {
  while (!step.done) {
    const { text, budget } = step.value;
    const n = text.length > OFF_LOOP_CHARS ? knownTextTokens(text, budget) : countTextTokens(text, budget);
    if (n === undefined) return countOffLoop(text, budget).then((counted) => resume(walk, walk.next(counted)));
    step = walk.next(n);
  }
  return step.value;
}

async function countOffLoop(text: string, budget: number): Promise<number> {
  const answer = await thread.call({ type: 'count', text, budget });
  if (answer.type === 'failed') throw new Error(answer.message);
  keepTextTokens(text, budget, answer.tokens);
  return answer.tokens;
}

/** Ends the token-count thread, if one runs; a later long text starts another. */
export function closeTokenCountThread(): Promise<void> {
  return thread.close();
}
