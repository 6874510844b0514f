// The CounterStore seam: atomic counters for quotas, spike arrest and LLM token quotas, in memory or in Redis.
import type { MaybePromise } from '../caches/cache-store.js';

/**
 * Time: every operation takes the caller's `nowMs` (default `Date.now()`), in both implementations, so tests can
 * drive windows deterministically and memory and Redis agree. Replicas sharing Redis must keep their clocks in sync
 * (NTP); skew only moves a window edge by the skew. Keys are the caller's, e.g. `quota:{app}:{operationSet}`.
 * Amounts, limits and deltas are non-negative safe integers (deltas may be negative); a bad argument is a RangeError.
 * A store in this process (`inProcess`) may answer with the value itself, and throw: a promise per call cost a policy
 * chain more than the counting did.
 */
export interface CounterStore {
  /**
   * True when every call completes in this process's memory without waiting on I/O: such a store can be neither
   * unavailable nor slow, so callers need no timeout around it.
   */
  readonly inProcess?: boolean;

  /**
   * An id for a new token reservation, unique in this store (a sequence number in one process). Without it, a random
   * UUID: a store replicas share needs ids unique across them.
   */
  newHoldId?(): HoldId;

  /**
   * The caller gave up waiting (its own deadline, shorter than the store's): whatever is still in flight must never
   * be applied, or a request already refused (or let through uncounted) would be counted after all.
   */
  abandonPending?(): void;

  /**
   * Fixed window (aligned to multiples of `windowMs` since the epoch): adds `amount` only if the count stays within
   * `limit`. A refused call consumes nothing.
   */
  consume(key: string, amount: number, limit: number, windowMs: number, nowMs?: number): MaybePromise<WindowResult>;

  /**
   * Rolling window: at most `limit` in any `windowMs` ending now. Events are kept in slots of windowMs/1000 (≥ 1 ms),
   * so an event counts until its whole slot has left the window: never more than `limit` is allowed, and capacity
   * frees at most one slot (0.1% of the window) late. Memory per key is bounded by ~1000 slots.
   */
  consumeRolling(key: string, amount: number, limit: number, windowMs: number, nowMs?: number): MaybePromise<WindowResult>;

  /**
   * Spike arrest as GCRA: one request per `intervalMs` on average, up to `burst` (≥ 1) back to back.
   * `weight` (Apigee's MessageWeight) counts one call as several.
   */
  consumeSmoothed(key: string, intervalMs: number, burst: number, nowMs?: number, weight?: number): MaybePromise<SmoothedResult>;

  /**
   * LLM token quotas: reserves an estimate before the request, atomically, only if count + amount ≤ limit.
   * Shares `consume`'s fixed-window counter, so `get` works on either. An allowed reservation is recorded under
   * `hold.id` until `settle`, and counts as held until then or until `hold.untilMs`, whichever comes first: every
   * replica can tell a counter full of running requests' reservations (they give back what they do not use) from one
   * full of tokens spent.
   */
  reserve(key: string, amount: number, limit: number, windowMs: number, hold: ReservationHold, nowMs?: number): MaybePromise<ReserveResult>;

  /**
   * Reconciles reservation `id` of `key` with the real usage, once: adds `delta` (negative to give back), never going
   * below 0 but allowed above the limit (tokens already spent still count), and ends its hold. Resolves false, changing
   * nothing, when the reservation is not recorded: settled already (a settlement tried again after its answer was
   * lost), or its window has ended.
   */
  settle(key: string, id: HoldId, delta: number): MaybePromise<boolean>;

  /**
   * Adds `delta` to the fixed-window count (negative to take away), never going below 0 but allowed above any limit.
   * `nowMs` picks the window. Returns the new count.
   */
  adjust(key: string, delta: number, windowMs: number, nowMs?: number): MaybePromise<number>;

  /** The current fixed-window count of `key` (0 when its window has ended). */
  get(key: string, nowMs?: number): MaybePromise<number>;

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

/** A token reservation's id: a random UUID, or a number from the store's own `newHoldId`. */
export type HoldId = string | number;

/** Names a token reservation, and until when at most it counts as held by a request still running. */
export interface ReservationHold {
  /** Unique to the reservation in its store. */
  id: HoldId;
  untilMs: number;
}

export interface ReserveResult extends WindowResult {
  /** Of the count, what reservations not settled and not past their `untilMs` hold (this one's included when allowed). */
  held: number;
}

export interface SmoothedResult {
  allowed: boolean;
  /** 0 when allowed; otherwise how long until this call would be allowed. */
  retryAfterMs: number;
}
