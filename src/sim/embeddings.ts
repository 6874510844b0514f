// Deterministic embeddings that preserve similarity: hashed word, word-pair and character-trigram features, L2-normalised.
import { hashString } from './hash.js';

export const EMBEDDING_DIMENSIONS = 256;

const WORD = /[\p{L}\p{N}]+/gu;

// Whole words carry most of the meaning; bigrams reward shared phrasing, trigrams tolerate inflection and typos.
const UNIGRAM_WEIGHT = 1;
const BIGRAM_WEIGHT = 0.5;
const TRIGRAM_WEIGHT = 0.25;

/** embed('the cat sat') is close (cosine) to embed('a cat sat down') and far from embed('quarterly revenue'). */
export function embed(text: string, dimensions = EMBEDDING_DIMENSIONS): number[] {
  const vec = new Float64Array(dimensions);
  const words = text.toLowerCase().match(WORD) ?? [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    add(vec, `w:${w}`, UNIGRAM_WEIGHT);
    if (i > 0) add(vec, `b:${words[i - 1]} ${w}`, BIGRAM_WEIGHT);
    const padded = `#${w}#`;
    for (let j = 0; j + 3 <= padded.length; j++) add(vec, `t:${padded.slice(j, j + 3)}`, TRIGRAM_WEIGHT);
  }
  let norm = 0;
  for (let i = 0; i < dimensions; i++) norm += vec[i] * vec[i];
  // Text without words still gets a unit vector, so cosine similarity stays defined.
  if (norm === 0) {
    vec[0] = 1;
    norm = 1;
  }
  const scale = 1 / Math.sqrt(norm);
  const out = new Array<number>(dimensions);
  for (let i = 0; i < dimensions; i++) out[i] = vec[i] * scale;
  return out;
}

// Signed feature hashing: the sign bit keeps unrelated features that collide from adding up to false similarity.
function add(vec: Float64Array, feature: string, weight: number): void {
  const h = hashString(feature);
  const index = h % vec.length;
  vec[index] += Math.floor(h / 2 ** 52) === 1 ? weight : -weight;
}

/** The OpenAI `encoding_format: "base64"` form: little-endian float32s, base64-encoded. */
export function toBase64(vector: readonly number[]): string {
  return Buffer.from(new Float32Array(vector).buffer).toString('base64');
}

export function cosineSimilarity(a: readonly number[], b: readonly number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}
