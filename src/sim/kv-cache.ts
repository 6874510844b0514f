// The simulated KV cache: fixed-size token blocks, prefix caching by chained block hashes, LRU eviction.
import { hashInts, hashString } from './hash.js';

export const BLOCK_SIZE = 16;

/** Hashes of the full BLOCK_SIZE-token blocks of a prompt; block i's hash covers blocks 0..i and the model. */
export function promptBlockHashes(modelKey: string, tokens: ArrayLike<number>): number[] {
  const full = Math.floor(tokens.length / BLOCK_SIZE);
  const hashes = new Array<number>(full);
  let prev = hashString(modelKey);
  for (let i = 0; i < full; i++) {
    prev = hashInts(tokens, i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE, prev);
    hashes[i] = prev;
  }
  return hashes;
}

export function blocksFor(tokens: number): number {
  return Math.ceil(tokens / BLOCK_SIZE);
}

export interface Allocation {
  blocks: number[];
  /** Leading prompt blocks found in the cache (their tokens need no prefill). */
  hitBlocks: number;
}

export class KvCache {
  readonly totalBlocks: number;
  #refs: Int32Array;
  #hashOf: Float64Array; // NaN when a block holds no reusable prefix
  #byHash = new Map<number, number>();
  #free: number[] = []; // unreferenced blocks holding nothing worth keeping
  #evictable = new Map<number, true>(); // unreferenced cached blocks, least recently used first
  #used = 0;

  constructor(totalBlocks: number) {
    this.totalBlocks = totalBlocks;
    this.#refs = new Int32Array(totalBlocks);
    this.#hashOf = new Float64Array(totalBlocks).fill(NaN);
    for (let b = totalBlocks - 1; b >= 0; b--) this.#free.push(b);
  }

  get usedBlocks(): number {
    return this.#used;
  }

  /** Fraction of blocks held by running sequences (vllm:kv_cache_usage_perc). */
  get usage(): number {
    return this.#used / this.totalBlocks;
  }

  get cachedBlocks(): number {
    return this.#byHash.size;
  }

  /** How many leading blocks of `hashes` are cached right now. */
  matchPrefix(hashes: readonly number[]): number {
    let n = 0;
    while (n < hashes.length && this.#byHash.has(hashes[n])) n++;
    return n;
  }

  /**
   * Takes `count` blocks for a sequence whose prompt has block `hashes`, reusing cached leading blocks, or returns
   * null (changing nothing) when fewer than count + `reserve` blocks would remain available.
   */
  allocate(hashes: readonly number[], count: number, reserve = 0): Allocation | null {
    const hits = Math.min(this.matchPrefix(hashes), count);
    let revived = 0; // cached hits that are unreferenced now, so they stop being available for others
    for (let i = 0; i < hits; i++) if (this.#refs[this.#byHash.get(hashes[i])!] === 0) revived++;
    const available = this.#free.length + this.#evictable.size - revived;
    if (available < count - hits + reserve) return null;

    const blocks = new Array<number>(count);
    for (let i = 0; i < hits; i++) {
      const b = this.#byHash.get(hashes[i])!;
      this.#retain(b);
      blocks[i] = b;
    }
    for (let i = hits; i < count; i++) {
      const b = this.#take();
      const h = i < hashes.length ? hashes[i] : NaN;
      if (!Number.isNaN(h) && !this.#byHash.has(h)) {
        this.#hashOf[b] = h;
        this.#byHash.set(h, b);
      }
      this.#retain(b);
      blocks[i] = b;
    }
    return { blocks, hitBlocks: hits };
  }

  /** One more block for a growing sequence, or null when none is available. */
  append(): number | null {
    if (this.#free.length + this.#evictable.size === 0) return null;
    const b = this.#take();
    this.#retain(b);
    return b;
  }

  /** Releases a sequence's blocks; cached ones stay reusable until evicted, the tail evicted first. */
  release(blocks: readonly number[]): void {
    for (let i = blocks.length - 1; i >= 0; i--) {
      const b = blocks[i];
      if (--this.#refs[b] > 0) continue;
      this.#used--;
      if (Number.isNaN(this.#hashOf[b])) this.#free.push(b);
      else this.#evictable.set(b, true);
    }
  }

  #retain(b: number): void {
    if (this.#refs[b]++ > 0) return;
    this.#used++;
    this.#evictable.delete(b);
  }

  #take(): number {
    const plain = this.#free.pop();
    if (plain !== undefined) return plain;
    const [lru] = this.#evictable.keys();
    this.#evictable.delete(lru);
    this.#byHash.delete(this.#hashOf[lru]);
    this.#hashOf[lru] = NaN;
    return lru;
  }
}
