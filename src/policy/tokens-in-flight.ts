// Tokens that token quotas reserved for requests still running on this replica, per counter. A refusal that only
// they cause ends within a request's time, not at the window's end: the 429 says so (LLMTokenQuota).

export class TokensInFlight {
  readonly #held = new Map<string, number>();

  /** Holds `tokens` on `key` until the returned function is called (once is enough; later calls do nothing). */
  hold(key: string, tokens: number): () => void {
    this.#held.set(key, this.held(key) + tokens);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = this.held(key) - tokens;
      if (left > 0) this.#held.set(key, left);
      else this.#held.delete(key);
    };
  }

  held(key: string): number {
    return this.#held.get(key) ?? 0;
  }
}
