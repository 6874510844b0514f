// The CounterStore seam: atomic counters for quotas, spike arrest and LLM token quotas, in memory or in Redis.

/**
 * Time: every operation takes the caller's `nowMs` (default `Date.now()`), in both implementations, so tests can
 * drive windows deterministically and memory and Redis agree. Replicas sharing Redis must keep their clocks in sync
 * (NTP); skew only moves a window edge by the skew. Keys are the caller's, e.g. `quota:{app}:{operationSet}`.
 * Amounts, limits and deltas are non-negative safe integers (deltas may be negative); a bad argument is a RangeError.
 */
export interface CounterStore {
  /**
   * True when every call completes in this process's memory without waiting on I/O: such a store can be neither
   * unavailable nor slow, so callers need no timeout around it.
   */
  readonly inProcess?: boolean;

  /**
   * The caller gave up waiting (its own deadline, shorter than the store's): whatever is still in flight must never
   * be applied, or a request already refused (or let through uncounted) would be counted after all.
   */
  abandonPending?(): void;

  /**
   * Fixed window (aligned to multiples of `windowMs` since the epoch): adds `amount` only if the count stays within
   * `limit`. A refused call consumes nothing.
   */
  consume(key: string, amount: number, limit: number, windowMs: number, nowMs?: number): Promise<WindowResult>;

  /**
   * Rolling window: at most `limit` in any `windowMs` ending now. Events are kept in slots of windowMs/1000 (≥ 1 ms),
   * so an event counts until its whole slot has left the window: never more than `limit` is allowed, and capacity
   * frees at most one slot (0.1% of the window) late. Memory per key is bounded by ~1000 slots.
   */
  consumeRolling(key: string, amount: number, limit: number, windowMs: number, nowMs?: number): Promise<WindowResult>;

  /**
   * Spike arrest as GCRA: one request per `intervalMs` on average, up to `burst` (≥ 1) back to back.
   * `weight` (Apigee's MessageWeight) counts one call as several.
   */
  consumeSmoothed(key: string, intervalMs: number, burst: number, nowMs?: number, weight?: number): Promise<SmoothedResult>;

  /**
   * LLM token quotas: reserves an estimate before the request, atomically, only if count + amount ≤ limit.
   * Shares `consume`'s fixed-window counter, so `get` and `adjust` work on either.
   */
  reserve(key: string, amount: number, limit: number, windowMs: number, nowMs?: number): Promise<WindowResult>;

  /**
   * Reconciles a reservation with the real usage: adds `delta` (negative to give back), never going below 0 but
   * allowed above the limit (tokens already spent still count). Pass the `nowMs` of the reservation so the
   * correction lands in the same window. Returns the new count.
   */
  adjust(key: string, delta: number, windowMs: number, nowMs?: number): Promise<number>;

  /** The current fixed-window count of `key` (0 when its window has ended). */
  get(key: string, nowMs?: number): Promise<number>;

  close(): Promise<void>;
}

export interface WindowResult {
  allowed: boolean;
  /** The count after this call (unchanged when refused). */
  count: number;
  remaining: number;
  /**
   * Fixed window: when it ends. Rolling: when the oldest counted slot leaves the window (capacity frees up); for a
   * refused call, when enough has left for it to fit (everything, if it never can).
   */
  resetAtMs: number;
}

export interface SmoothedResult {
  allowed: boolean;
  /** 0 when allowed; otherwise how long until this call would be allowed. */
  retryAfterMs: number;
}
