import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EMBEDDING_DIMENSIONS, cosineSimilarity, embed, toBase64 } from './embeddings.js';

describe('embeddings', () => {
  test('unit length, fixed dimension, deterministic', () => {
    const v = embed('The quick brown fox');
    assert.equal(v.length, EMBEDDING_DIMENSIONS);
    assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-9);
    assert.deepEqual(embed('The quick brown fox'), v);
    assert.equal(embed('abc', 32).length, 32);
    assert.ok(Math.abs(Math.hypot(...embed('')) - 1) < 1e-9);
  });

  test('texts sharing words are more similar than unrelated texts', () => {
    const cases: [string, string, string][] = [
      ['How do I reset my password?', 'How can I reset my account password', 'Quarterly revenue grew by nine percent'],
      ['the cat sat on the mat', 'a cat sat on a mat', 'interest rates and bond yields'],
      ['deploy the gateway to kubernetes', 'deploying a gateway on kubernetes clusters', 'recipe for banana bread'],
    ];
    for (const [a, near, far] of cases) {
      const simNear = cosineSimilarity(embed(a), embed(near));
      const simFar = cosineSimilarity(embed(a), embed(far));
      assert.ok(simNear > 0.3, `${a} ~ ${near}: ${simNear}`);
      assert.ok(simNear > simFar + 0.25, `${a}: near ${simNear}, far ${simFar}`);
    }
    assert.ok(cosineSimilarity(embed('Reset PASSWORD!'), embed('reset password')) > 0.999);
  });

  test('texts without letters or digits differ by their characters; only the empty text is the fallback vector', () => {
    for (const [a, b] of [
      ['😀', '🔥'],
      [':)', ':('],
      ['???', '!!!'],
      ['', '…'],
      ['😀 hello', '🔥 hello'],
    ]) {
      assert.ok(cosineSimilarity(embed(a), embed(b)) < 0.6, `${a} vs ${b}: ${cosineSimilarity(embed(a), embed(b))}`);
    }
    assert.ok(cosineSimilarity(embed('🔥🔥'), embed('🔥🔥')) > 0.999);
    assert.ok(cosineSimilarity(embed('😀 hello'), embed('hello')) > 0.3);
  });

  test('unspaced scripts (CJK) compare character by character: near-identical sentences score high', () => {
    const near: [string, string][] = [
      ['今天天气怎么样', '今天的天气怎么样'],
      ['你好世界', '你好，世界'],
      ['東京の天気は？', '東京の天気を教えて'],
    ];
    for (const [a, b] of near) assert.ok(cosineSimilarity(embed(a), embed(b)) > 0.6, `${a} ~ ${b}: ${cosineSimilarity(embed(a), embed(b))}`);
    assert.ok(cosineSimilarity(embed('今天天气怎么样'), embed('明天股票会涨吗')) < 0.3);
  });

  test('base64 holds the float32 values', () => {
    const v = embed('hello world', 8);
    const bytes = Buffer.from(toBase64(v), 'base64');
    const back = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    assert.equal(back.length, 8);
    for (let i = 0; i < 8; i++) assert.ok(Math.abs(back[i] - v[i]) < 1e-6);
  });
});
