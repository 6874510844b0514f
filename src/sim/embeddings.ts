// Deterministic embeddings that preserve similarity: hashed word, word-pair and character-trigram features, L2-normalised.
import { hashString } from './hash.js';

export const EMBEDDING_DIMENSIONS = 256;

/** Scripts written without spaces: a run of them is a sentence, not a word, so each character counts as one. */
const UNSPACED = String.raw`\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}`;

/**
 * The words of a text: one character of an unspaced script, one symbol (an emoji, a currency sign), or a run of other
 * letters and digits with their combining marks (Devanagari's vowel signs are marks). Punctuation is not a word.
 */
const WORD = new RegExp(String.raw`[${UNSPACED}]|\p{S}|[[\p{L}\p{N}]--[${UNSPACED}]][[\p{L}\p{M}\p{N}]--[${UNSPACED}]]*`, 'gv');

// Whole words carry most of the meaning; bigrams reward shared phrasing, trigrams tolerate inflection and typos.
const UNIGRAM_WEIGHT = 1;
const BIGRAM_WEIGHT = 0.5;
const TRIGRAM_WEIGHT = 0.25;

/** embed('the cat sat') is close (cosine) to embed('a cat sat down') and far from embed('quarterly revenue'). */
export function embed(text: string, dimensions = EMBEDDING_DIMENSIONS): number[] {
  const vec = new Float64Array(dimensions);
  const lower = text.toLowerCase();
  // A text of punctuation alone (`?!`, `:)`) is its characters: every one of them a word.
  const words = lower.match(WORD) ?? Array.from(lower);
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    add(vec, `w:${w}`, UNIGRAM_WEIGHT);
    if (i > 0) add(vec, `b:${words[i - 1]} ${w}`, BIGRAM_WEIGHT);
    // Code points, not UTF-16 units: an emoji is one character.
    const c = Array.from(`#${w}#`);
    for (let j = 0; j + 3 <= c.length; j++) add(vec, `t:${c[j]}${c[j + 1]}${c[j + 2]}`, TRIGRAM_WEIGHT);
  }
  let norm = 0;
  for (let i = 0; i < dimensions; i++) norm += vec[i] * vec[i];
  // The empty text still gets a unit vector, so cosine similarity stays defined.
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
