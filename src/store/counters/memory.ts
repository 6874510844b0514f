// The default CounterStore: plain Maps in this process (one replica), swept of expired entries by an unref'd timer.
import {
  checkBurst,
  checkCount,
  checkDelta,
  checkInterval,
  checkLocalId,
  checkNow,
  checkWindow,
  rollingSlotMs,
  roundTat,
  TAT_TOLERANCE_MS,
  windowEnd,
} from './arguments.js';
import type { CounterStore, HoldId, ReservationHold, ReserveResult, SmoothedResult, WindowResult } from './counter-store.js';

interface FixedWindow {
  count: number;
  endMs: number;
  /** A token counter's reservations not settled yet, by id (absent on other counters). */
  reservations?: Map<HoldId, Reservation>;
  /** Of the count, what those whose hold has not lapsed hold. */
  held?: number;
  /** When the next of those holds lapses. */
  nextLapseMs?: number;
}

interface Reservation {
  amount: number;
  untilMs: number;
  /** False once `untilMs` has passed: still settled once, but no longer held. */
  held: boolean;
}

/** Slot starts and amounts, oldest first, with their running total. */
interface RollingLog {
  starts: number[];
  amounts: number[];
  total: number;
  expiresAtMs: number;
}

const SWEEP_INTERVAL_MS = 30_000;

/**
 * Every operation runs synchronously to completion, so it is atomic in Node's single thread with no locking, and
 * answers with its result itself (no promise).
 * @example const counters = new MemoryCounterStore(); const r = counters.consume('quota:app1', 1, 100, 60_000);
 */
export class MemoryCounterStore implements CounterStore {
  readonly inProcess = true;
  readonly #windows = new Map<string, FixedWindow>();
  readonly #rolling = new Map<string, RollingLog>();
  /** Key → GCRA theoretical arrival time (also when the key can be forgotten). */
  readonly #smoothed = new Map<string, number>();
  readonly #sweeper: NodeJS.Timeout;
  #lastHoldId = 0;

  constructor() {
    // Without unref the sweeper alone would keep a finished process (or test run) alive.
    this.#sweeper = setInterval(() => this.sweep(Date.now()), SWEEP_INTERVAL_MS).unref();
  }

  newHoldId(): number {
    return ++this.#lastHoldId;
  }

  consume(key: string, amount: number, limit: number, windowMs: number, nowMs = Date.now()): WindowResult {
    checkCount('amount', amount);
    checkCount('limit', limit);
    const window = this.#current(key, checkWindow(windowMs), checkNow(nowMs));
    if (window.count + amount > limit) return windowResult(false, window.count, limit, window.endMs);
    window.count += amount;
    this.#windows.set(key, window);
    return windowResult(true, window.count, limit, window.endMs);
  }

  reserve(key: string, amount: number, limit: number, windowMs: number, hold: ReservationHold, nowMs = Date.now()): ReserveResult {
    checkCount('amount', amount);
    checkCount('limit', limit);
    checkLocalId(hold.id);
    checkNow(hold.untilMs);
    const window = this.#current(key, checkWindow(windowMs), checkNow(nowMs));
    const reservations = (window.reservations ??= new Map());
    lapseHolds(window, nowMs);
    if (window.count + amount > limit) return reserveResult(false, window, limit);
    window.count += amount;
    reservations.set(hold.id, { amount, untilMs: hold.untilMs, held: true });
    window.held = (window.held ?? 0) + amount;
    window.nextLapseMs = Math.min(window.nextLapseMs ?? Infinity, hold.untilMs);
    this.#windows.set(key, window);
    return reserveResult(true, window, limit);
  }

  settle(key: string, id: HoldId, delta: number): boolean {
    checkLocalId(id);
    checkDelta(delta);
    const window = this.#windows.get(key);
    const reservation = window?.reservations?.get(id);
    if (!window || !reservation) return false;
    window.reservations!.delete(id);
    if (reservation.held) window.held! -= reservation.amount;
    window.count = Math.max(0, window.count + delta);
    return true;
  }

  adjust(key: string, delta: number, windowMs: number, nowMs = Date.now()): number {
    checkDelta(delta);
    const window = this.#current(key, checkWindow(windowMs), checkNow(nowMs));
    window.count = Math.max(0, window.count + delta);
    this.#windows.set(key, window);
    return window.count;
  }

  get(key: string, nowMs = Date.now()): number {
    const window = this.#windows.get(key);
    return window && checkNow(nowMs) < window.endMs ? window.count : 0;
  }

  consumeRolling(key: string, amount: number, limit: number, windowMs: number, nowMs = Date.now()): WindowResult {
    checkCount('amount', amount);
    checkCount('limit', limit);
    checkWindow(windowMs);
    checkNow(nowMs);
    const slot = rollingSlotMs(windowMs);
    const log = this.#rolling.get(key) ?? { starts: [], amounts: [], total: 0, expiresAtMs: 0 };
    // A slot leaves the window once its last millisecond is windowMs old.
    const cutoff = nowMs - windowMs + 1;
    while (log.starts.length > 0 && log.starts[0] + slot <= cutoff) {
      log.total -= log.amounts[0];
      log.starts.shift();
      log.amounts.shift();
    }
    /** When the oldest slots holding `need` have left (all of them if they hold less; now if there are none). */
    const resetAt = (need: number) => {
      if (log.starts.length === 0) return nowMs;
      let i = 0;
      for (let freed = log.amounts[0]; freed < need && i < log.starts.length - 1; ) freed += log.amounts[++i];
      return log.starts[i] + slot + windowMs - 1;
    };
    const allowed = log.total + amount <= limit;
    if (!allowed || amount === 0) {
      if (log.starts.length === 0) this.#rolling.delete(key);
      // A refused call fits once what it overshoots by has left, which the oldest slot alone may not free.
      return windowResult(allowed, log.total, limit, resetAt(log.total + amount - limit));
    }
    const start = nowMs - (nowMs % slot);
    const last = log.starts.length - 1;
    // A call stamped earlier than the newest slot (another replica's clock) joins it: counted longer, never shorter.
    if (last >= 0 && log.starts[last] >= start) log.amounts[last] += amount;
    else {
      log.starts.push(start);
      log.amounts.push(amount);
    }
    log.total += amount;
    log.expiresAtMs = log.starts[log.starts.length - 1] + slot + windowMs;
    this.#rolling.set(key, log);
    return windowResult(true, log.total, limit, resetAt(0));
  }

  consumeSmoothed(key: string, intervalMs: number, burst: number, nowMs = Date.now(), weight = 1): SmoothedResult {
    checkInterval(intervalMs);
    checkBurst('burst', burst);
    checkBurst('weight', weight);
    checkNow(nowMs);
    const tat = Math.max(this.#smoothed.get(key) ?? nowMs, nowMs);
    const nextTat = tat + intervalMs * weight;
    const allowAt = nextTat - intervalMs * burst;
    if (nowMs < allowAt - TAT_TOLERANCE_MS) return { allowed: false, retryAfterMs: Math.ceil(allowAt - nowMs) };
    this.#smoothed.set(key, roundTat(nextTat));
    return { allowed: true, retryAfterMs: 0 };
  }

  /** Drops entries that ended before `nowMs`; runs on a timer, exposed for tests. */
  sweep(nowMs: number): void {
    for (const [key, window] of this.#windows) if (window.endMs <= nowMs) this.#windows.delete(key);
    for (const [key, log] of this.#rolling) if (log.expiresAtMs <= nowMs) this.#rolling.delete(key);
    for (const [key, tat] of this.#smoothed) if (tat <= nowMs) this.#smoothed.delete(key);
  }

  /** How many keys are held (for tests of sweeping). */
  get size(): number {
    return this.#windows.size + this.#rolling.size + this.#smoothed.size;
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#windows.clear();
    this.#rolling.clear();
    this.#smoothed.clear();
  }

  #current(key: string, windowMs: number, nowMs: number): FixedWindow {
    const window = this.#windows.get(key);
    // The stored window stays current until it ends, even if windowMs changed or a lagging clock says otherwise.
    return window && nowMs < window.endMs ? window : { count: 0, endMs: windowEnd(nowMs, windowMs) };
  }
}

/** Ends the holds whose time has come (looked for only once the earliest of them has). */
function lapseHolds(window: FixedWindow, nowMs: number): void {
  if (window.nextLapseMs === undefined || nowMs < window.nextLapseMs) return;
  let next = Infinity;
  for (const r of window.reservations!.values()) {
    if (!r.held) continue;
    if (r.untilMs <= nowMs) {
      r.held = false;
      window.held! -= r.amount;
    } else next = Math.min(next, r.untilMs);
  }
  window.nextLapseMs = next === Infinity ? undefined : next;
}

function windowResult(allowed: boolean, count: number, limit: number, resetAtMs: number): WindowResult {
  return { allowed, count, remaining: Math.max(0, limit - count), resetAtMs };
}

function reserveResult(allowed: boolean, window: FixedWindow, limit: number): ReserveResult {
  return { allowed, count: window.count, remaining: Math.max(0, limit - window.count), resetAtMs: window.endMs, held: window.held ?? 0 };
}
