// Which endpoint probably holds which prompt blocks in its KV cache: for each block hash, the endpoints
// holding it, and per endpoint an approximate LRU bounded by its cache size.

/** One endpoint's hold on one block. */
class Holding {
  /** Last use (index clock), and its value when this holding was (re)queued for eviction. */
  stamp: number;
  queued: number;
  constructor(
    readonly server: ServerBlocks,
    readonly key: number,
    readonly holders: Holding[],
    stamp: number,
  ) {
    this.stamp = stamp;
    this.queued = stamp;
  }
}

/** One endpoint's blocks in eviction order: a ring, oldest queued first. */
class ServerBlocks {
  ring: (Holding | undefined)[] = new Array(64);
  head = 0;
  size = 0;
  /** Scratch for match(): leading blocks of the current prompt this endpoint holds. */
  matched = 0;

  push(h: Holding): void {
    if (this.size === this.ring.length) {
      const grown = new Array<Holding | undefined>(this.ring.length * 2);
      for (let i = 0; i < this.size; i++) grown[i] = this.ring[(this.head + i) % this.ring.length];
      this.ring = grown;
      this.head = 0;
    }
    this.ring[(this.head + this.size) % this.ring.length] = h;
    this.size++;
  }

  shift(): Holding {
    const h = this.ring[this.head]!;
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.ring.length;
    this.size--;
    return h;
  }
}

export class PrefixIndex<K> {
  readonly #servers = new Map<K, ServerBlocks>();
  readonly #list: ServerBlocks[] = [];
  readonly #blocks = new Map<number, Holding[]>();
  #clock = 0;
  // The prompt of the last match() and the holders found on its walk, reused by remember().
  #hashes: Float64Array = new Float64Array(0);
  #n = 0;
  #walked: Holding[][] = [];
  #walkedCount = 0;

  /**
   * Greedy longest-prefix match of hashes[0..n) for every endpoint at once; read with matched(key).
   * Walks the prompt's blocks only while some endpoint still matches, so the cost is bounded by the
   * longest match, not by the number of endpoints.
   */
  match(hashes: Float64Array, n: number): void {
    this.#hashes = hashes;
    this.#n = n;
    this.#walkedCount = 0;
    for (const s of this.#list) s.matched = 0;
    for (let i = 0; i < n; i++) {
      const holders = this.#blocks.get(hashes[i]);
      if (!holders) return;
      this.#walked[this.#walkedCount++] = holders;
      let advanced = false;
      for (const h of holders) {
        if (h.server.matched === i) {
          h.server.matched = i + 1;
          advanced = true;
        }
      }
      if (!advanced) return;
    }
  }

  /** Leading blocks the endpoint held at the last match(). */
  matched(key: K): number {
    return this.#servers.get(key)?.matched ?? 0;
  }

  /** The endpoint now holds the prompt last passed to match(); beyond `capacity` blocks its least recently used go. */
  remember(key: K, capacity: number): void {
    let s = this.#servers.get(key);
    if (!s) {
      s = new ServerBlocks();
      this.#servers.set(key, s);
      this.#list.push(s);
    }
    // The prompt's first block gets the newest stamp: a later block is useless without the ones
    // before it, so the tail of a prompt must be evicted before its head.
    for (let i = this.#n - 1; i >= 0; i--) {
      const stamp = ++this.#clock;
      let holders = i < this.#walkedCount ? this.#walked[i] : this.#blocks.get(this.#hashes[i]);
      if (!holders) {
        holders = [];
        this.#blocks.set(this.#hashes[i], holders);
      }
      let mine: Holding | undefined;
      for (const h of holders) {
        if (h.server === s) {
          mine = h;
          break;
        }
      }
      if (mine) mine.stamp = stamp;
      else {
        mine = new Holding(s, this.#hashes[i], holders, stamp);
        holders.push(mine);
        s.push(mine);
      }
    }
    this.#walkedCount = 0;
    this.#evict(s, capacity);
  }

  remove(key: K): void {
    const s = this.#servers.get(key);
    if (!s) return;
    while (s.size > 0) this.#drop(s.shift());
    this.#servers.delete(key);
    this.#list.splice(this.#list.indexOf(s), 1);
  }

  /** Blocks remembered for the endpoint. */
  size(key: K): number {
    return this.#servers.get(key)?.size ?? 0;
  }

  /** Evicts until `capacity`, giving each block used since it was queued another turn (CLOCK-style LRU, O(1) per use). */
  #evict(s: ServerBlocks, capacity: number): void {
    while (s.size > capacity) {
      const h = s.shift();
      if (h.stamp !== h.queued) {
        h.queued = h.stamp;
        s.push(h);
      } else this.#drop(h);
    }
  }

  #drop(h: Holding): void {
    const holders = h.holders;
    const at = holders.indexOf(h);
    holders[at] = holders[holders.length - 1];
    holders.pop();
    if (holders.length === 0) this.#blocks.delete(h.key);
  }
}
