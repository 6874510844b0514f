import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { countTextTokens } from '../lib/tokenizer.js';
import { VOCABULARY, drawOutputLength, textSource } from './text.js';

function generateText(seed: number, count: number): string {
  const next = textSource(seed);
  let out = '';
  for (let i = 0; i < count; i++) out += next();
  return out;
}

describe('generated text', () => {
  test('every vocabulary piece is exactly one token', () => {
    for (const piece of VOCABULARY) assert.equal(countTextTokens(piece), 1, JSON.stringify(piece));
  });

  test('N decode steps tokenize back to N tokens', () => {
    for (const seed of [1, 2, 3, 42, 1234567]) {
      for (const n of [1, 7, 100, 1000]) assert.equal(countTextTokens(generateText(seed, n)), n, `seed ${seed}, ${n} steps`);
    }
  });

  test('the same seed gives the same text; another seed, another text', () => {
    const text = generateText(99, 50);
    assert.equal(generateText(99, 50), text);
    assert.notEqual(generateText(100, 50), text);
    assert.match(text, /^[A-Z]/);
  });

  test('drawn output lengths are deterministic, varied and capped', () => {
    const lengths = Array.from({ length: 500 }, (_, i) => drawOutputLength(i, 1024));
    assert.deepEqual(lengths, Array.from({ length: 500 }, (_, i) => drawOutputLength(i, 1024)));
    assert.ok(lengths.every((n) => n >= 1 && n <= 1024));
    assert.ok(new Set(lengths).size > 100);
    const sorted = [...lengths].sort((a, b) => a - b);
    const median = sorted[250];
    assert.ok(median > 80 && median < 300, `median ${median}`);
    assert.ok(Array.from({ length: 100 }, (_, i) => drawOutputLength(i, 10)).every((n) => n <= 10));
  });
});
