// The seam between the semantic cache and where its vectors live (memory, Redis, PostgreSQL), plus the vector maths
// and the binary entry layout the shared backends store.
import type { MaybePromise } from '../caches/cache-store.js';

export interface VectorMatch {
  /** Cosine similarity of the query and the stored vector, in [-1, 1]. */
  similarity: number;
  value: Buffer;
}

/**
 * Nearest-neighbour lookup within a scope by a flat scan. Vectors must be unit length (see `normalize`), so cosine
 * similarity is a dot product. Backends throw CacheStoreUnavailableError when they cannot answer.
 */
export interface VectorIndex {
  /** The closest live entry of `scope` whose similarity is at least `threshold`. */
  search(scope: string, vector: Float32Array, threshold: number): MaybePromise<VectorMatch | undefined>;
  /**
   * Stores `value` under `key` (the prompt's digest): it replaces the entry of the scope with that key, so a prompt
   * answered again (asked with `no-cache`, or by many clients at once) is held once. The memory index also replaces a
   * near-identical vector's entry.
   */
  add(scope: string, key: string, vector: Float32Array, value: Buffer, ttlMs: number): MaybePromise<void>;
  close(): Promise<void>;
}

/** A unit-length copy (float32 halves the memory of float64 and loses nothing a 0.95 threshold can notice). */
export function normalize(values: ArrayLike<number>): Float32Array {
  const out = new Float32Array(values.length);
  let norm = 0;
  for (let i = 0; i < values.length; i++) norm += values[i] * values[i];
  if (norm === 0) return out;
  const scale = 1 / Math.sqrt(norm);
  for (let i = 0; i < values.length; i++) out[i] = values[i] * scale;
  return out;
}

/** The dot product; vectors of different lengths (another embedding model) never match. */
export function similarity(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return -Infinity;
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
  return dot;
}

// Entry layout for the shared backends: expiresAt (float64) | dimensions (uint32) | vector (float32 × dimensions) | value.
const HEAD = 12;

export function encodeEntry(vector: Float32Array, value: Buffer, expiresAt: number): Buffer {
  const out = Buffer.allocUnsafe(HEAD + vector.byteLength + value.length);
  out.writeDoubleLE(expiresAt, 0);
  out.writeUInt32LE(vector.length, 8);
  Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).copy(out, HEAD);
  value.copy(out, HEAD + vector.byteLength);
  return out;
}

export function entryExpiresAt(entry: Buffer): number {
  return entry.readDoubleLE(0);
}

/** The stored vector's similarity to `query`, reading the float32s in place. */
export function entrySimilarity(entry: Buffer, query: Float32Array): number {
  const dims = entry.readUInt32LE(8);
  if (dims !== query.length || entry.length < HEAD + dims * 4) return -Infinity;
  let dot = 0;
  for (let i = 0; i < dims; i++) dot += entry.readFloatLE(HEAD + i * 4) * query[i];
  return dot;
}

export function entryValue(entry: Buffer): Buffer {
  return entry.subarray(HEAD + entry.readUInt32LE(8) * 4);
}
