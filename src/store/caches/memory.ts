// The default answer cache: an LRU in process memory bounded by bytes, with a time to live per entry; expired entries
// are swept every 30 s (SWEEP_INTERVAL_MS), so answers to one-off callers do not sit in memory until the budget is full.
import { sweepWhileAlive } from '../../lib/weak-sweeper.js';
import type { CacheStore } from './cache-store.js';

interface Entry {
  value: Buffer;
  expiresAt: number;
  bytes: number;
}

/** Map, entry, Buffer and ArrayBuffer bookkeeping per entry, so many tiny entries still count against the budget. */
const ENTRY_OVERHEAD = 160;

export interface MemoryCacheStoreOptions {
  /** Budget for keys and values together (default 64 MiB). */
  maxBytes?: number;
  /** Epoch milliseconds; injected by tests. */
  now?: () => number;
}

/**
 * A Map keeps insertion order, so re-inserting on a hit makes the first key the least recently used one.
 * @example const store = new MemoryCacheStore({ maxBytes: 16 * 1024 * 1024 }); store.set('k', buf, 60_000);
 */
export class MemoryCacheStore implements CacheStore {
  readonly #entries = new Map<string, Entry>();
  readonly #maxBytes: number;
  readonly #now: () => number;
  readonly #sweeper = sweepWhileAlive(this);
  #bytes = 0;

  constructor(opts: MemoryCacheStoreOptions = {}) {
    this.#maxBytes = opts.maxBytes ?? 64 * 1024 * 1024;
    this.#now = opts.now ?? Date.now;
  }

  /** Bytes held now (keys, values and overhead). */
  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): Buffer | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    this.#entries.delete(key);
    if (entry.expiresAt <= this.#now()) {
      this.#bytes -= entry.bytes;
      return undefined;
    }
    this.#entries.set(key, entry);
    return entry.value;
  }

  set(key: string, value: Buffer, ttlMs: number): void {
    const bytes = key.length * 2 + value.length + ENTRY_OVERHEAD;
    this.#remove(key);
    if (bytes > this.#maxBytes || ttlMs <= 0) return;
    this.#entries.set(key, { value: ownMemory(value), expiresAt: this.#now() + ttlMs, bytes });
    this.#bytes += bytes;
    for (const [oldest, entry] of this.#entries) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#entries.delete(oldest);
      this.#bytes -= entry.bytes;
    }
  }

  /**
   * Drops the entries whose time to live is over; runs on a timer, exposed for tests. An expired entry used to leave
   * only when its key was read again or the budget pushed it out: one-off callers' answers filled the budget for good.
   */
  sweep(): void {
    const now = this.#now();
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt > now) continue;
      this.#entries.delete(key);
      this.#bytes -= entry.bytes;
    }
  }

  /** Drops every entry; returns how many there were (expired ones not yet swept included). */
  clear(): number {
    const count = this.#entries.size;
    this.#entries.clear();
    this.#bytes = 0;
    return count;
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.clear();
  }

  #remove(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
  }
}

/**
 * The value in memory of its own. Answers under 4 KiB are made in slices of Node's shared 8 KiB pool, and a kept
 * slice keeps its whole block alive: a 16 MiB budget of small answers held ~30 MB.
 */
function ownMemory(value: Buffer): Buffer {
  if (value.byteOffset === 0 && value.buffer.byteLength === value.length) return value;
  const own = Buffer.allocUnsafeSlow(value.length);
  value.copy(own);
  return own;
}
