// Chained hashes of a prompt's fixed-size character blocks, the keys of the prefix index.

/**
 * Hashes the first `maxBlocks` full blocks of `text` into `out` and returns how many it hashed.
 * Block i's hash covers the model name and every block up to i (h0 = H(model‖b0), hi = H(bi‖h(i−1))),
 * so equal hashes mean equal prefixes. Two 32-bit lanes (FNV-1a and a murmur-style multiply-xorshift)
 * run side by side and combine into a 53-bit safe integer: Map keys stay plain numbers, and with
 * millions of indexed blocks a 32-bit key would collide too often. Plain JS over char codes measured
 * faster than crypto.createHash for 64-character blocks, where per-call overhead dominates.
 */
export function hashBlocks(model: string, text: string, blockChars: number, maxBlocks: number, out: Float64Array): number {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < model.length; i++) {
    const c = model.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  const whole = Math.floor(text.length / blockChars);
  const n = whole < maxBlocks ? whole : maxBlocks;
  let pos = 0;
  for (let k = 0; k < n; k++) {
    const end = pos + blockChars;
    for (; pos < end; pos++) {
      const c = text.charCodeAt(pos);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
      b ^= b >>> 15;
    }
    out[k] = (fmix32(a) >>> 0) * 0x200000 + (fmix32(b) >>> 11);
  }
  return n;
}

/** murmur3's finalizer: spreads every input bit over the output, so nearby lane states give unrelated keys. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
