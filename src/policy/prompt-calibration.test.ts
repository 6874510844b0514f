import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CALIBRATION_MODELS, CALIBRATION_TTL_MS, CALIBRATION_WINDOW, MAX_FIXED_SHORTFALL, MAX_SHORTFALL_RATIO, PromptCalibration } from './prompt-calibration.js';

describe('PromptCalibration', () => {
  test('nothing observed, or servers counting no more than the estimate: the estimate stands', () => {
    const c = new PromptCalibration(() => 0);
    assert.equal(c.correct('m', 100), 100);
    c.observe('m', 100, 90);
    c.observe('m', 100, 100);
    assert.equal(c.correct('m', 100), 100);
  });

  test("a chat template's tokens on every request: a fixed addition, for long prompts too; per model", () => {
    const c = new PromptCalibration(() => 0);
    c.observe('m', 14, 44);
    c.observe('m', 200, 231);
    assert.equal(c.correct('m', 14), 44);
    assert.equal(c.correct('m', 5000), 5030);
    assert.equal(c.correct('other', 14), 14);
  });

  test('a tokenizer that splits long text finer: a proportional addition, plus the fixed part', () => {
    const c = new PromptCalibration(() => 0);
    c.observe('m', 2000, 2400);
    c.observe('m', 4000, 4900);
    c.observe('m', 10, 15);
    assert.equal(c.correct('m', 10_000), 12_005);
  });

  test("one request with something the estimate misses (an image, say) does not raise everyone's estimate", () => {
    const c = new PromptCalibration(() => 0);
    for (let i = 0; i < 5; i++) c.observe('m', 20, 45);
    c.observe('m', 20, 2045);
    assert.equal(c.correct('m', 20), 45);
    // ... and only what every one of the last requests shows counts: one it missed by nothing resets it.
    const fresh = new PromptCalibration(() => 0);
    fresh.observe('m', 20, 2045);
    fresh.observe('m', 20, 20);
    assert.equal(fresh.correct('m', 20), 20);
  });

  test("the only request a quiet model has seen raises others' estimates by a server's way of counting at most", () => {
    // Before: a first request 8,000 tokens short raised every tenant's estimate by 8,000, refusing their requests.
    const c = new PromptCalibration(() => 0);
    c.observe('m', 12, 8013);
    assert.equal(c.correct('m', 12), 12 + MAX_FIXED_SHORTFALL);
    const long = new PromptCalibration(() => 0);
    long.observe('m', 1000, 60_000);
    assert.equal(long.correct('m', 2000), 2000 * (1 + MAX_SHORTFALL_RATIO));
  });

  test('the window moves: old shortfalls leave it', () => {
    const c = new PromptCalibration(() => 0);
    c.observe('m', 20, 20);
    for (let i = 0; i < CALIBRATION_WINDOW; i++) c.observe('m', 20, 50);
    assert.equal(c.correct('m', 20), 50);
  });

  test('a model not heard from for a while starts over; the models remembered are bounded', () => {
    let now = 0;
    const c = new PromptCalibration(() => now);
    c.observe('m', 14, 44);
    now = CALIBRATION_TTL_MS + 1;
    assert.equal(c.correct('m', 14), 14);
    for (let i = 0; i <= CALIBRATION_MODELS; i++) c.observe(`model-${i}`, 10, 20);
    assert.equal(c.correct('model-0', 10), 10, 'the oldest went');
    assert.equal(c.correct(`model-${CALIBRATION_MODELS}`, 10), 20);
  });
});
