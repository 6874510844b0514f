// Fast deterministic hashing and seeded randomness for the simulator (block hashes, text, embeddings, faults).

const TWO_32 = 0x1_0000_0000;

/** A 53-bit hash of a string (cyrb53), safe to use as a number Map key. */
export function hashString(text: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ (seed >>> 0);
  let h2 = 0x41c6ce57 ^ Math.floor(seed / TWO_32);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  return finish(h1, h2);
}

/** A 53-bit hash of ints[from..to), chained onto `seed` (a previous hash) so equal blocks after different prefixes differ. */
export function hashInts(ints: ArrayLike<number>, from: number, to: number, seed: number): number {
  let h1 = 0xdeadbeef ^ (seed >>> 0);
  let h2 = 0x41c6ce57 ^ Math.floor(seed / TWO_32);
  for (let i = from; i < to; i++) {
    const c = ints[i];
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  return finish(h1, h2);
}

function finish(h1: number, h2: number): number {
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 2097152 * (h2 >>> 0) + (h1 >>> 0);
}

/** A seeded PRNG (mulberry32) giving floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = (seed ^ Math.floor(seed / TWO_32)) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / TWO_32;
  };
}
