// Argument checks and window arithmetic shared by both counter stores (the Redis Lua scripts mirror the arithmetic).
import type { HoldId } from './counter-store.js';

export function checkCount(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
  return value;
}

export function checkDelta(value: number): number {
  if (!Number.isSafeInteger(value)) throw new RangeError(`delta must be an integer, got ${value}`);
  return value;
}

export function checkWindow(windowMs: number): number {
  if (!Number.isSafeInteger(windowMs) || windowMs < 1) throw new RangeError(`windowMs must be a positive integer, got ${windowMs}`);
  return windowMs;
}

export function checkInterval(intervalMs: number): number {
  if (!Number.isFinite(intervalMs) || intervalMs <= 0) throw new RangeError(`intervalMs must be positive, got ${intervalMs}`);
  return intervalMs;
}

export function checkBurst(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be an integer ≥ 1, got ${value}`);
  return value;
}

export function checkNow(nowMs: number): number {
  if (!Number.isFinite(nowMs) || nowMs < 0) throw new RangeError(`nowMs must be a time in ms since the epoch, got ${nowMs}`);
  return nowMs;
}

/** A store replicas share takes string ids alone: a number is one replica's own sequence, which another repeats. */
export function checkId(id: HoldId): string {
  if (typeof id !== 'string' || id === '') throw new RangeError(`a reservation id must be a non-empty string, got ${JSON.stringify(id)}`);
  return id;
}

/** In one process, the store's own sequence numbers (newHoldId) are ids too. */
export function checkLocalId(id: HoldId): HoldId {
  return typeof id === 'number' && Number.isSafeInteger(id) ? id : checkId(id);
}

/** End of the fixed window containing `nowMs`. */
export function windowEnd(nowMs: number, windowMs: number): number {
  return nowMs - (nowMs % windowMs) + windowMs;
}

/** Rolling windows keep events in slots of this width: ~1000 slots per window bounds memory. */
export function rollingSlotMs(windowMs: number): number {
  return Math.max(1, Math.floor(windowMs / 1000));
}

/**
 * How far past its allowed time a request may look and still pass: a rounded arrival time plus fractional intervals
 * (100000pm is 0.6 ms) lands a float's breadth after `now` (MONDAY + 2e-7), which refused the request a whole
 * millisecond tick holds.
 */
export const TAT_TOLERANCE_MS = 0.001;

/** GCRA's stored theoretical arrival time is kept to the microsecond in both stores, so they round alike. */
export function roundTat(tat: number): number {
  return Math.round(tat * 1000) / 1000;
}
