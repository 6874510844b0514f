// Running a task one run at a time, where only the newest request for it matters (a configuration reload): requests
// made during a run share one next run, and the run under way is told it has been overtaken.

/**
 * One run at a time. A request made while a run is under way aborts that run's signal (it should commit nothing more:
 * the next run reads newer input) and is answered by the next run, which every request made meanwhile shares.
 * @example
 * const reloads = new CoalescedRuns((overtaken) => reloadOnce(overtaken));
 * watchConfig(paths, () => void reloads.run());
 */
export class CoalescedRuns<T> {
  readonly #task: (overtaken: AbortSignal) => Promise<T>;
  #running: Promise<T> | null = null;
  #overtaken: AbortController | null = null;
  #next: Promise<T> | null = null;

  constructor(task: (overtaken: AbortSignal) => Promise<T>) {
    this.#task = task;
  }

  /** Resolves with the outcome of the run that serves this request: one started now, or the next one. */
  run(): Promise<T> {
    this.#overtaken?.abort();
    if (this.#next) return this.#next;
    if (!this.#running) return this.#start();
    // Started whatever the run under way ends with; by then its `finally` has cleared #running.
    const next = this.#running.then(
      () => this.#startNext(),
      () => this.#startNext(),
    );
    this.#next = next;
    return next;
  }

  /** Aborts the run under way (as a newer request would) without asking for another. */
  abort(): void {
    this.#overtaken?.abort();
  }

  /** Resolves once the run under way and the one queued behind it (if any) are over, however they ended. */
  async settled(): Promise<void> {
    await (this.#next ?? this.#running)?.catch(() => {});
  }

  #startNext(): Promise<T> {
    this.#next = null;
    return this.#start();
  }

  #start(): Promise<T> {
    const overtaken = (this.#overtaken = new AbortController());
    const run: Promise<T> = this.#task(overtaken.signal).finally(() => {
      if (this.#running !== run) return;
      this.#running = null;
      this.#overtaken = null;
    });
    this.#running = run;
    return run;
  }
}
