// The waits a smoothed rate's refusals are told (`retry-after-ms`): each refused caller of a key gets a slot of its
// own to come back in, one after another from the earliest moment the rate lets a request through. Told the same wait,
// or waits spread at random, a burst's callers came back together or colliding, and the rate let one through per slot:
// clients that waited exactly as told still failed after their retries (the Vercel AI SDK lost 3–4 of 16 concurrent
// calls against a 50-per-second SpikeArrest, openai-node 1–3 of 30).

/**
 * Slots are a rate's slot apart plus slack: a caller that comes back a little late (its timer, the network) moves a
 * smoothed rate's next free moment by as much, which would push the next caller, on time at its slot, into another
 * refusal. With a quarter of a slot, and at least 10 ms, of slack, each may come back up to that late.
 */
const slackOf = (slotMs: number) => Math.max(slotMs / 4, 10);

/** Keys whose promised slots are remembered at most: the least recently refused go first (callers choose keys). */
const MAX_KEYS = 10_000;

/**
 * Per policy: hands out the slots. A hint per replica (replicas sharing a Redis counter promise their own slots), and
 * lost with a configuration change; a caller that never comes back leaves its slot unused.
 * @example const wait = slots.wait(key, now, r.retryAfterMs, rate.intervalMs * weight);
 */
export class RetrySlots {
  /** Key → the moment (epoch ms) after the last slot promised. */
  readonly #next = new Map<string, number>();
  readonly #maxKeys: number;

  constructor(maxKeys = MAX_KEYS) {
    this.#maxKeys = maxKeys;
  }

  /**
   * The wait (ms from `now`) for a caller refused on `key` that the rate would let through `retryAfterMs` from now at
   * the earliest: that moment, or the first slot after those already promised, whichever is later. A request takes
   * `slotMs` of the rate (its weight's or its tokens' worth of slots).
   */
  wait(key: string, now: number, retryAfterMs: number, slotMs: number): number {
    const earliest = now + Math.max(0, retryAfterMs);
    const promised = this.#next.get(key);
    const at = promised !== undefined && promised > earliest ? promised : earliest;
    this.#next.delete(key);
    this.#next.set(key, at + slotMs + slackOf(slotMs));
    if (this.#next.size > this.#maxKeys) this.#next.delete(this.#next.keys().next().value!);
    return Math.ceil(at - now);
  }

  /** How many keys have promised slots remembered (for tests of the bound). */
  get size(): number {
    return this.#next.size;
  }
}
