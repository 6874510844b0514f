// When the requests begun before a given moment are all over: what a reload replaced (a tracer and its export thread,
// an ExtensionChain's channels, the metric series of removed models) is let go then, not after the longest request
// could last. Requests are counted by cohort (those begun between two `over()` calls), not one by one.

/** The requests begun since the last seal; `ended` is set once it is sealed, and called when its last one ends. */
interface Cohort {
  requests: number;
  ended?: () => void;
}

export class InFlightCohorts<K extends object> {
  #current: Cohort = { requests: 0 };
  readonly #of = new WeakMap<K, Cohort>();
  /** Sealed cohorts with requests still in flight, until they end. */
  readonly #sealed = new Set<Promise<void>>();

  begin(request: K): void {
    this.#current.requests++;
    this.#of.set(request, this.#current);
  }

  /** Once per request begun; again, or for one never begun, it does nothing. */
  end(request: K): void {
    const cohort = this.#of.get(request);
    if (!cohort) return;
    this.#of.delete(request);
    if (--cohort.requests === 0) cohort.ended?.();
  }

  /** Resolves once every request begun so far has ended; those begun later do not delay it. */
  over(): Promise<void> {
    const sealed = this.#current;
    if (sealed.requests > 0) {
      this.#current = { requests: 0 };
      const ended = new Promise<void>((resolve) => (sealed.ended = resolve));
      this.#sealed.add(ended);
      void ended.then(() => this.#sealed.delete(ended));
    }
    return this.#sealed.size === 0 ? Promise.resolve() : Promise.all(this.#sealed).then(() => {});
  }
}
