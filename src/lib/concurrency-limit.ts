// Runs work a few at a time, with a bounded waiting line: work that would wait beyond it is refused at once, so a
// burst of expensive calls (analytics queries) can neither take a shared resource whole nor pile up without end.

/** Thrown by ConcurrencyLimit.run when `maxRunning` calls run and `maxWaiting` more already wait. */
export class QueueFullError extends Error {}

/**
 * @example const limit = new ConcurrencyLimit(2, 8); const answer = await limit.run(() => expensiveQuery());
 */
export class ConcurrencyLimit {
  readonly #maxRunning: number;
  readonly #maxWaiting: number;
  #running = 0;
  /** Waiting calls in arrival order; each is handed the slot of a call that ends. */
  readonly #waiting: (() => void)[] = [];

  constructor(maxRunning: number, maxWaiting: number) {
    this.#maxRunning = maxRunning;
    this.#maxWaiting = maxWaiting;
  }

  /** `work()` once fewer than maxRunning calls run; rejects with QueueFullError when the waiting line is full. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#running < this.#maxRunning) this.#running++;
    else if (this.#waiting.length < this.#maxWaiting) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else throw new QueueFullError(`${this.#running} calls are running and ${this.#waiting.length} waiting`);
    try {
      return await work();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running--;
    }
  }
}
