// The seam between the answer caches (ResponseCache) and where entries live: in process memory or in Redis.

/** A value or the promise of one: the memory backend answers synchronously, so a cache lookup costs no promise there. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * Opaque byte values under opaque keys, each with its own time to live. Keys are already scoped and hashed by the
 * caller (no prompt text reaches the store). Backends throw CacheStoreUnavailableError when they cannot answer.
 */
export interface CacheStore {
  get(key: string): MaybePromise<Buffer | undefined>;
  /** A value larger than the backend accepts is silently not stored (a cache may always forget). */
  set(key: string, value: Buffer, ttlMs: number): MaybePromise<void>;
  close(): Promise<void>;
}

/** A slow cache is worse than none: a lookup that takes longer is a miss. */
export const CACHE_COMMAND_TIMEOUT_MS = 250;

/** A purge is an admin's wait, not a request's: each of its round trips may take this long before it is a 503. */
export const CACHE_PURGE_TIMEOUT_MS = 5000;

export class CacheStoreUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CacheStoreUnavailableError';
  }
}
