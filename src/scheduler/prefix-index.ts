// Which endpoint probably holds which prompt blocks in its KV cache: for each block hash, the endpoints
// holding it, and per endpoint an LRU list of its blocks bounded by its cache size.
//
// Holdings (one endpoint's hold on one block) live in typed arrays, not objects: at the default 31,250 blocks per
// endpoint a pool of 64 engines indexes two million of them, which as objects cost ~350 bytes each (680 MiB) and
// gave every major GC millions of objects to mark; here they cost under 100 bytes and nothing to mark.

const NONE = -1;

/** One endpoint's holdings, least recently used first: a list through the holdings' `older`/`newer` links. */
class ServerBlocks {
  oldest = NONE;
  newest = NONE;
  size = 0;
  /** Scratch for match(): leading blocks of the current prompt this endpoint holds. */
  matched = 0;

  constructor(readonly id: number) {}
}

/**
 * The holdings, struct-of-arrays. A block's holders form a list through `next`, headed in the block table;
 * freed ids chain through `next` too. An endpoint's holdings form its LRU list through `older` and `newer`.
 */
class Holdings {
  key = new Float64Array(1024);
  server = new Int32Array(1024);
  next = new Int32Array(1024);
  older = new Int32Array(1024);
  newer = new Int32Array(1024);
  #used = 0;
  #free = NONE;

  alloc(key: number, server: number, next: number): number {
    let h = this.#free;
    if (h !== NONE) this.#free = this.next[h];
    else {
      if (this.#used === this.key.length) this.#grow();
      h = this.#used++;
    }
    this.key[h] = key;
    this.server[h] = server;
    this.next[h] = next;
    return h;
  }

  /** Makes `h` the endpoint's most recently used holding. */
  append(s: ServerBlocks, h: number): void {
    this.older[h] = s.newest;
    this.newer[h] = NONE;
    if (s.newest === NONE) s.oldest = h;
    else this.newer[s.newest] = h;
    s.newest = h;
    s.size++;
  }

  /** Takes `h` out of the endpoint's list. */
  unlink(s: ServerBlocks, h: number): void {
    const older = this.older[h];
    const newer = this.newer[h];
    if (older === NONE) s.oldest = newer;
    else this.newer[older] = newer;
    if (newer === NONE) s.newest = older;
    else this.older[newer] = older;
    s.size--;
  }

  release(h: number): void {
    this.server[h] = NONE;
    this.next[h] = this.#free;
    this.#free = h;
  }

  #grow(): void {
    const n = this.key.length * 2;
    this.key = copied(this.key, new Float64Array(n));
    this.server = copied(this.server, new Int32Array(n));
    this.next = copied(this.next, new Int32Array(n));
    this.older = copied(this.older, new Int32Array(n));
    this.newer = copied(this.newer, new Int32Array(n));
  }
}

function copied<T extends Float64Array | Int32Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

/** Block hash → first holding: open addressing with linear probing, at most half full. */
class BlockTable {
  keys = new Float64Array(1024);
  heads = new Int32Array(1024).fill(NONE);
  #count = 0;

  /** The slot holding `key`, or NONE. */
  find(key: number): number {
    const mask = this.keys.length - 1;
    for (let i = slotOf(key, mask); ; i = (i + 1) & mask) {
      if (this.heads[i] === NONE) return NONE;
      if (this.keys[i] === key) return i;
    }
  }

  /** The slot holding `key`, made when missing: the caller links its first holder in at once (NONE marks empty). */
  slot(key: number): number {
    if ((this.#count + 1) * 2 > this.keys.length) this.#grow();
    const mask = this.keys.length - 1;
    let i = slotOf(key, mask);
    for (; this.heads[i] !== NONE; i = (i + 1) & mask) if (this.keys[i] === key) return i;
    this.keys[i] = key;
    this.#count++;
    return i;
  }

  /** Frees the slot of a block nobody holds any more. */
  delete(at: number): void {
    // Backward-shift deletion: entries after the hole that probed past it move back, so lookups need no tombstones.
    const mask = this.keys.length - 1;
    let hole = at;
    for (let i = (at + 1) & mask; this.heads[i] !== NONE; i = (i + 1) & mask) {
      const home = slotOf(this.keys[i], mask);
      // Whether home lies cyclically in (hole, i]: if not, the entry may fill the hole.
      if (hole <= i ? home <= hole || home > i : home <= hole && home > i) {
        this.keys[hole] = this.keys[i];
        this.heads[hole] = this.heads[i];
        hole = i;
      }
    }
    this.heads[hole] = NONE;
    this.#count--;
  }

  #grow(): void {
    const keys = this.keys;
    const heads = this.heads;
    this.keys = new Float64Array(keys.length * 2);
    this.heads = new Int32Array(keys.length * 2).fill(NONE);
    const mask = this.keys.length - 1;
    for (let j = 0; j < keys.length; j++) {
      if (heads[j] === NONE) continue;
      let i = slotOf(keys[j], mask);
      while (this.heads[i] !== NONE) i = (i + 1) & mask;
      this.keys[i] = keys[j];
      this.heads[i] = heads[j];
    }
  }
}

/** Block hashes are well-mixed 53-bit integers (block-hash.ts): their low 32 bits make a good slot. */
function slotOf(key: number, mask: number): number {
  return (key >>> 0) & mask;
}

export class PrefixIndex<K> {
  readonly #servers = new Map<K, ServerBlocks>();
  /** Servers by id (a removed server's id is reused); undefined where none. */
  readonly #byId: (ServerBlocks | undefined)[] = [];
  readonly #list: ServerBlocks[] = [];
  readonly #holdings = new Holdings();
  readonly #table = new BlockTable();
  // The prompt of the last match(), for remember().
  #hashes: Float64Array = new Float64Array(0);
  #n = 0;

  /**
   * Greedy longest-prefix match of hashes[0..n) for every endpoint at once; read with matched(key).
   * Walks the prompt's blocks only while some endpoint still matches, so the cost is bounded by the
   * longest match, not by the number of endpoints.
   */
  match(hashes: Float64Array, n: number): void {
    this.#hashes = hashes;
    this.#n = n;
    for (const s of this.#list) s.matched = 0;
    const { server, next } = this.#holdings;
    for (let i = 0; i < n; i++) {
      const at = this.#table.find(hashes[i]);
      if (at === NONE) return;
      let advanced = false;
      for (let h = this.#table.heads[at]; h !== NONE; h = next[h]) {
        const s = this.#byId[server[h]]!;
        if (s.matched === i) {
          s.matched = i + 1;
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
      let id = this.#byId.indexOf(undefined);
      if (id < 0) id = this.#byId.length;
      s = new ServerBlocks(id);
      this.#byId[id] = s;
      this.#servers.set(key, s);
      this.#list.push(s);
    }
    const hold = this.#holdings;
    const table = this.#table;
    // Each block becomes the most recently used as it is used, as in an engine's free-block queue (vLLM's). The
    // prompt's first block last: a later block is useless without the ones before it, so the tail of a prompt must be
    // evicted before its head.
    for (let i = this.#n - 1; i >= 0; i--) {
      const key = this.#hashes[i];
      const at = table.slot(key);
      let mine = table.heads[at];
      while (mine !== NONE && hold.server[mine] !== s.id) mine = hold.next[mine];
      if (mine !== NONE) hold.unlink(s, mine);
      else {
        mine = hold.alloc(key, s.id, table.heads[at]);
        table.heads[at] = mine;
      }
      hold.append(s, mine);
    }
    while (s.size > capacity) this.#drop(s, s.oldest);
  }

  remove(key: K): void {
    const s = this.#servers.get(key);
    if (!s) return;
    while (s.size > 0) this.#drop(s, s.oldest);
    this.#servers.delete(key);
    this.#byId[s.id] = undefined;
    this.#list.splice(this.#list.indexOf(s), 1);
  }

  /** Blocks remembered for the endpoint. */
  size(key: K): number {
    return this.#servers.get(key)?.size ?? 0;
  }

  /** Forgets the endpoint's holding `h`. */
  #drop(s: ServerBlocks, h: number): void {
    const hold = this.#holdings;
    const table = this.#table;
    hold.unlink(s, h);
    const at = table.find(hold.key[h]);
    if (table.heads[at] === h) {
      table.heads[at] = hold.next[h];
      if (table.heads[at] === NONE) table.delete(at);
    } else {
      let prev = table.heads[at];
      while (hold.next[prev] !== h) prev = hold.next[prev];
      hold.next[prev] = hold.next[h];
    }
    hold.release(h);
  }
}
