// Token reservations of this replica whose settlement the counter store could not take as their request ended (an
// outage, a timeout): kept and tried again, so a blip of the store does not leave whole reservations charged for the
// rest of their window (28% of a day's quota after a cut of under a second). The store settles a reservation at most
// once (CounterStore.settle), so trying again after a settlement it applied but whose answer was lost changes nothing.
import { andThen } from '../lib/maybe-promise.js';
import type { MaybePromise } from '../store/caches/cache-store.js';
import type { CounterStore } from '../store/counters/counter-store.js';
import type { CounterGuard } from './counter-guard.js';

interface Kept {
  counters: CounterGuard;
  op: (store: CounterStore) => MaybePromise<unknown>;
  untilMs: number;
}

export interface TokensInFlightOptions {
  /** Epoch ms, the clock the reservations' windows follow (tests pass a clock of their own). */
  now?: () => number;
  /** Settlements kept at most: past that, one more is dropped, so a long outage cannot grow memory without end. */
  maxKept?: number;
  /** The first try again comes this long after a settlement is kept, and after the store last took one. */
  minDelayMs?: number;
  /** Each try that finds the store still away doubles the wait, up to this. */
  maxDelayMs?: number;
}

/** @example await inFlight.settle(guard, (c) => c.settle(key, id, -300), windowEndMs); // now, or later */
export class TokensInFlight {
  readonly #kept: Kept[] = [];
  readonly #now: () => number;
  readonly #maxKept: number;
  readonly #minDelayMs: number;
  readonly #maxDelayMs: number;
  #delayMs: number;
  #timer: NodeJS.Timeout | undefined;
  #trying = false;

  constructor(opts: TokensInFlightOptions = {}) {
    this.#now = opts.now ?? Date.now;
    // ~200 bytes each: 2 MB at most.
    this.#maxKept = opts.maxKept ?? 10_000;
    this.#minDelayMs = opts.minDelayMs ?? 250;
    this.#maxDelayMs = opts.maxDelayMs ?? 5_000;
    this.#delayMs = this.#minDelayMs;
  }

  /**
   * Settles through `counters` now or, when the store cannot answer, later: kept until `untilMs`, the end of the
   * reservation's window, after which the correction no longer matters. Resolves once settled or kept; a promise only
   * when the store answered with one.
   */
  settle(counters: CounterGuard, op: (store: CounterStore) => MaybePromise<unknown>, untilMs: number): MaybePromise<void> {
    return andThen(counters.settle(op), (taken) => {
      if (!taken) this.#keep(counters, op, untilMs);
    });
  }

  /** A settlement the store could not take: kept to be tried again, unless too late or too many are. */
  #keep(counters: CounterGuard, op: (store: CounterStore) => MaybePromise<unknown>, untilMs: number): void {
    if (this.#kept.length >= this.#maxKept || this.#now() >= untilMs) {
      counters.countSettlement('unsettled');
      return;
    }
    counters.countSettlement('deferred');
    this.#kept.push({ counters, op, untilMs });
    this.#schedule();
  }

  /** Settlements waiting to be tried again. */
  get size(): number {
    return this.#kept.length;
  }

  #schedule(): void {
    if (this.#timer || this.#trying) return;
    // Unref'd: nothing is left to settle for once the process is ending.
    this.#timer = setTimeout(() => void this.#tryAgain(), this.#delayMs).unref();
  }

  /** Oldest first, one at a time: the first the store cannot take says it is still away, and the rest wait with it. */
  async #tryAgain(): Promise<void> {
    this.#timer = undefined;
    this.#trying = true;
    let done = 0;
    try {
      // Settlements kept meanwhile join the end of the list, and this loop.
      for (const next of this.#kept) {
        if (this.#now() >= next.untilMs) next.counters.countSettlement('unsettled');
        else if (await next.counters.settle(next.op)) {
          next.counters.countSettlement('settled_late');
          this.#delayMs = this.#minDelayMs;
        } else {
          this.#delayMs = Math.min(this.#delayMs * 2, this.#maxDelayMs);
          return;
        }
        done++;
      }
    } finally {
      this.#kept.splice(0, done);
      this.#trying = false;
      if (this.#kept.length > 0) this.#schedule();
    }
  }
}
