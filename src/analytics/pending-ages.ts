// How long the analytics records not yet stored have waited, on the monotonic clock: the wall clock may step (an
// NTP correction, a restored VM), and a lag read from it went to 0 for the length of a step back while records piled up.

/** Records that came within this of a run's first are counted in that run: at most this much is added to a lag. */
const RUN_MS = 100;

/** Runs of records in the order they are stored, each stamped when its first record came (performance.now()). */
export class PendingAges {
  #runs: { count: number; at: number }[] = [];
  /** The first run still pending: taken runs are cut off the array now and then, not shifted one by one. */
  #head = 0;

  /** `count` records came now, after every record already pending. */
  add(count: number, at = performance.now()): void {
    if (count <= 0) return;
    const last = this.#runs.length > this.#head ? this.#runs[this.#runs.length - 1] : undefined;
    if (last && at - last.at < RUN_MS) last.count += count;
    else this.#runs.push({ count, at });
  }

  /** `count` records that came `ageMs` ago, before every record already pending (what an earlier process left). */
  addOldest(count: number, ageMs: number): void {
    if (count <= 0) return;
    this.#runs.splice(this.#head, 0, { count, at: performance.now() - Math.max(0, ageMs) });
  }

  /** The oldest `count` records were stored (or are no longer waited for). */
  take(count: number): void {
    let left = count;
    while (left > 0 && this.#head < this.#runs.length) {
      const run = this.#runs[this.#head];
      const n = Math.min(left, run.count);
      run.count -= n;
      left -= n;
      if (run.count === 0) this.#head++;
    }
    if (this.#head === this.#runs.length) {
      this.clear();
    } else if (this.#head > 1024) {
      this.#runs.splice(0, this.#head);
      this.#head = 0;
    }
  }

  clear(): void {
    this.#runs = [];
    this.#head = 0;
  }

  /** How long the oldest pending record has waited, in ms; 0 when none is pending. */
  oldestAgeMs(now = performance.now()): number {
    const oldest = this.#runs[this.#head];
    return oldest ? Math.max(0, now - oldest.at) : 0;
  }
}
