import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CALIBRATION_PERIOD_MS, PromptCalibration } from './prompt-calibration.js';

describe('PromptCalibration', () => {
  test('nothing observed, or servers counting no more than the estimate: the estimate stands', () => {
    const c = new PromptCalibration(() => 0);
    assert.equal(c.correct('m', 100), 100);
    c.observe('m', 100, 90);
    c.observe('m', 100, 100);
    assert.equal(c.correct('m', 100), 100);
  });

  test("a chat template's tokens on short prompts: a fixed addition, for long prompts too", () => {
    const c = new PromptCalibration(() => 0);
    c.observe('m', 14, 44);
    c.observe('m', 200, 225);
    assert.equal(c.correct('m', 14), 44);
    assert.equal(c.correct('m', 5000), 5030);
    assert.equal(c.correct('other', 14), 14, 'per model');
  });

  test('a tokenizer that splits long text finer: a proportional addition, plus the fixed part', () => {
    const c = new PromptCalibration(() => 0);
    c.observe('m', 2000, 2400);
    c.observe('m', 10, 15);
    assert.equal(c.correct('m', 10_000), 12_005);
  });

  test('what was learned fades after one to two periods', () => {
    let now = 0;
    const c = new PromptCalibration(() => now);
    c.observe('m', 14, 44);
    now = CALIBRATION_PERIOD_MS + 1;
    assert.equal(c.correct('m', 14), 44, 'the previous period still counts');
    now = 2 * CALIBRATION_PERIOD_MS + 2;
    assert.equal(c.correct('m', 14), 14);
  });
});
