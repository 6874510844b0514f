// The default semantic index: per-scope arrays of unit vectors in process memory, scanned flat (fine to ~10k
// entries per scope: 10k × 256 dimensions is ~2.5M multiply-adds, about a millisecond). Expired entries are swept every
// 30 s (SWEEP_INTERVAL_MS), as a search of their scope would drop them.
import { sweepWhileAlive } from '../../lib/weak-sweeper.js';
import type { VectorIndex, VectorMatch } from './vector-index.js';
import { similarity } from './vector-index.js';

interface Entry {
  key: string;
  vector: Float32Array;
  value: Buffer;
  expiresAt: number;
}

interface Scope {
  entries: Entry[];
  bytes: number;
}

const ENTRY_OVERHEAD = 96;
const sizeOf = (e: Entry): number => e.vector.byteLength + e.value.length + e.key.length + ENTRY_OVERHEAD;
/** A new answer this close to a stored one replaces it instead of adding a near-duplicate. */
const SAME = 0.9999;

export interface MemoryVectorIndexOptions {
  /** Oldest entries of a scope go first beyond this (default 10,000). */
  maxEntriesPerScope?: number;
  /** Budget over all scopes (default 256 MiB); the least recently searched scopes go first. */
  maxBytes?: number;
  now?: () => number;
}

export class MemoryVectorIndex implements VectorIndex {
  readonly #scopes = new Map<string, Scope>();
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #now: () => number;
  readonly #sweeper = sweepWhileAlive(this);
  #bytes = 0;

  constructor(opts: MemoryVectorIndexOptions = {}) {
    this.#maxEntries = opts.maxEntriesPerScope ?? 10_000;
    this.#maxBytes = opts.maxBytes ?? 256 * 1024 * 1024;
    this.#now = opts.now ?? Date.now;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** How many scopes are held (for tests of what is dropped). */
  get scopes(): number {
    return this.#scopes.size;
  }

  search(scope: string, vector: Float32Array, threshold: number): VectorMatch | undefined {
    const s = this.#scopes.get(scope);
    if (!s) return undefined;
    this.#scopes.delete(scope);
    this.#scopes.set(scope, s);
    const now = this.#now();
    let best: Entry | undefined;
    let bestSim = threshold;
    let expired = 0;
    for (const e of s.entries) {
      if (e.expiresAt <= now) {
        expired++;
        continue;
      }
      const sim = similarity(e.vector, vector);
      if (sim >= bestSim) {
        bestSim = sim;
        best = e;
      }
    }
    if (expired > 0) this.#prune(scope, s, now);
    return best && { similarity: bestSim, value: best.value };
  }

  add(scope: string, key: string, vector: Float32Array, value: Buffer, ttlMs: number): void {
    if (ttlMs <= 0) return;
    let s = this.#scopes.get(scope);
    if (!s) {
      s = { entries: [], bytes: 0 };
      this.#scopes.set(scope, s);
    }
    const entry = { key, vector, value, expiresAt: this.#now() + ttlMs };
    const bytes = sizeOf(entry);
    const same = s.entries.findIndex((e) => e.key === key || similarity(e.vector, vector) >= SAME);
    if (same !== -1) this.#drop(s, same);
    s.entries.push(entry);
    s.bytes += bytes;
    this.#bytes += bytes;
    while (s.entries.length > this.#maxEntries) this.#drop(s, 0);
    for (const [name, oldest] of this.#scopes) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#scopes.delete(name);
      this.#bytes -= oldest.bytes;
    }
  }

  /**
   * Drops expired entries, and the scopes they empty, of every scope; runs on a timer, exposed for tests. A scope no
   * search came back to (scopes are per request context, a client's to choose) kept its expired answers until the
   * byte budget pushed it out.
   */
  sweep(): void {
    const now = this.#now();
    for (const [name, s] of this.#scopes) this.#prune(name, s, now);
  }

  /** Drops every entry of every scope; returns how many there were. */
  clear(): number {
    let count = 0;
    for (const s of this.#scopes.values()) count += s.entries.length;
    this.#scopes.clear();
    this.#bytes = 0;
    return count;
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.clear();
  }

  #drop(s: Scope, i: number): void {
    const bytes = sizeOf(s.entries.splice(i, 1)[0]);
    s.bytes -= bytes;
    this.#bytes -= bytes;
  }

  /**
   * Drops the scope's expired entries, and the scope once they were all it held: the byte budget never evicts an
   * emptied scope (it holds no bytes), and scope names are per request context, which a client chooses (200,000
   * emptied scopes held 42 MB).
   */
  #prune(name: string, s: Scope, now: number): void {
    for (let i = s.entries.length - 1; i >= 0; i--) if (s.entries[i].expiresAt <= now) this.#drop(s, i);
    if (s.entries.length === 0) this.#scopes.delete(name);
  }

}
