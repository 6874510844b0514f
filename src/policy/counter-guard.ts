// The APIMExtensionPolicy's failOpen and timeout around every counter-store call: when the store cannot answer
// (CounterStoreUnavailableError, or slower than the timeout) the request is either allowed uncounted or refused with 500.
import { randomUUID } from 'node:crypto';
import { gatewayError } from '../gateway/errors.js';
import type { Logger } from '../lib/logger.js';
import { TimeoutError, withTimeout } from '../lib/with-timeout.js';
import type { MaybePromise } from '../store/caches/cache-store.js';
import type { CounterStore, HoldId } from '../store/counters/counter-store.js';
import { CounterStoreUnavailableError } from '../store/counters/errors.js';

/**
 * What became of a counter-store call the store could not answer (an outage or a timeout). A settlement (a token
 * reservation's reconciliation or refund) it could not take is `deferred` (kept and tried again), then either
 * `settled_late` or, when its window ended first or too many were waiting, `unsettled` (dropped).
 */
export const COUNTER_ERROR_OUTCOMES = ['failed_open', 'refused', 'deferred', 'settled_late', 'unsettled'] as const;
export type CounterErrorOutcome = (typeof COUNTER_ERROR_OUTCOMES)[number];
export type SettlementOutcome = Extract<CounterErrorOutcome, 'deferred' | 'settled_late' | 'unsettled'>;

export interface CounterGuardOptions {
  failOpen: boolean;
  timeoutMs: number;
  logger: Logger;
  /** Told what became of every call the store could not answer; outlives the guard (a metric kept across engine rebuilds). */
  onError?: (outcome: CounterErrorOutcome) => void;
  /** Epoch ms (tests pass a clock of their own). */
  now?: () => number;
}

class CounterTimeoutError extends Error {}

function isOutage(err: unknown): boolean {
  return err instanceof CounterStoreUnavailableError || err instanceof CounterTimeoutError;
}

/**
 * A store in this process is called directly: its answer comes back as it is, a plain value for the memory store,
 * so a policy chain on it runs without a promise (runSteps).
 * @example const r = await guard.call((s) => s.consume(key, 1, 100, 60_000)); if (r === undefined) return; // failed open
 */
export class CounterGuard {
  readonly #store: CounterStore;
  readonly #failOpen: boolean;
  readonly #timeoutMs: number;
  readonly #logger: Logger;
  readonly #onError: (outcome: CounterErrorOutcome) => void;
  readonly #now: () => number;
  #outage = false;
  /**
   * During an outage, calls before this time fail at once instead of each waiting out the timeout: a request makes
   * several counter calls (three with the full chain), so a slow store held every request three timeouts long. After
   * it, calls reach the store again, and the first answer ends the outage.
   */
  #retryAt = 0;

  constructor(store: CounterStore, opts: CounterGuardOptions) {
    this.#store = store;
    this.#failOpen = opts.failOpen;
    this.#timeoutMs = opts.timeoutMs;
    this.#logger = opts.logger;
    this.#onError = opts.onError ?? (() => {});
    this.#now = opts.now ?? Date.now;
  }

  /**
   * The store's answer; undefined when it could not answer and failOpen lets the request through. Otherwise throws 500.
   * A promise only when the store answered with one.
   */
  call<T>(op: (store: CounterStore) => MaybePromise<T>): MaybePromise<T | undefined> {
    // A timer and a race per call would cost more than the in-memory operation itself.
    if (!this.#store.inProcess) return this.#callRemote(op);
    try {
      const answer = op(this.#store);
      return answer instanceof Promise ? answer.catch((err: unknown) => this.#unanswered(err)) : answer;
    } catch (err) {
      return this.#unanswered(err);
    }
  }

  /** An id for a token reservation on this store (CounterStore.newHoldId). */
  holdId(): HoldId {
    return this.#store.newHoldId?.() ?? randomUUID();
  }

  /**
   * For the response flow, where nobody is left to refuse: true once the store took `op`; false when it could not
   * answer (an outage, or slower than the timeout), for the caller to keep and try again (TokensInFlight). Any other
   * failure is a bug: logged, and taken as done, as trying again would fail again.
   */
  settle(op: (store: CounterStore) => MaybePromise<unknown>): MaybePromise<boolean> {
    if (!this.#store.inProcess) return this.#settleRemote(op);
    try {
      const answer = op(this.#store);
      return answer instanceof Promise ? answer.then(taken, (err: unknown) => this.#untaken(err)) : true;
    } catch (err) {
      return this.#untaken(err);
    }
  }

  /** Counts what became of a settlement the store could not take at first (TokensInFlight). */
  countSettlement(outcome: SettlementOutcome): void {
    this.#onError(outcome);
  }

  async #callRemote<T>(op: (store: CounterStore) => MaybePromise<T>): Promise<T | undefined> {
    try {
      return await this.#attempt(op, true);
    } catch (err) {
      return this.#unanswered(err);
    }
  }

  /** What a call the store did not answer gives: undefined when failing open; otherwise it throws. */
  #unanswered(err: unknown): undefined {
    // Anything else is a bug (a RangeError, say): it surfaces as a 500 rather than hiding behind failOpen.
    if (!isOutage(err)) throw err;
    if (this.#failOpen) {
      this.#onError('failed_open');
      return undefined;
    }
    this.#onError('refused');
    throw gatewayError('TG_ERR_EXTENSION_FAILED', `A policy extension could not answer: ${(err as Error).message}`);
  }

  async #settleRemote(op: (store: CounterStore) => MaybePromise<unknown>): Promise<boolean> {
    try {
      // Never failed fast: the store may well answer this one.
      await this.#attempt(op, false);
      return true;
    } catch (err) {
      return this.#untaken(err);
    }
  }

  #untaken(err: unknown): boolean {
    if (isOutage(err)) return false;
    this.#logger.error({ err }, 'settling a counter failed');
    return true;
  }

  async #attempt<T>(op: (store: CounterStore) => MaybePromise<T>, failFast: boolean): Promise<T> {
    if (failFast && this.#outage && this.#now() < this.#retryAt) throw new CounterTimeoutError('the counter store is not answering (failing fast until it is tried again)');
    try {
      // Counted from the end of the turn, when a remote store's calls leave (they are held until then and batched).
      const result = await withTimeout(Promise.resolve(op(this.#store)), this.#timeoutMs, 'a counter-store call', { fromTurnEnd: true });
      if (this.#outage) {
        this.#outage = false;
        this.#logger.info('the counter store answers again');
      }
      return result;
    } catch (caught) {
      let err = caught;
      if (err instanceof TimeoutError) {
        // The store may still apply what it was sent: the request is answered as if it had not been.
        this.#store.abandonPending?.();
        err = new CounterTimeoutError(`the counter store did not answer within ${this.#timeoutMs}ms`);
      }
      if (isOutage(err)) this.#retryAt = this.#now() + this.#timeoutMs;
      if (isOutage(err) && !this.#outage) {
        this.#outage = true;
        this.#logger.warn({ err: (err as Error).message, failOpen: this.#failOpen }, 'the counter store cannot answer; requests are %s until it does', this.#failOpen ? 'let through uncounted' : 'refused');
      }
      throw err;
    }
  }
}

const taken = (): true => true;
