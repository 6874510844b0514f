import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { DecisionLog } from './decision-log.js';

describe('DecisionLog', () => {
  test('keeps the newest decisions, newest first, and copies what it returns', () => {
    const log = new DecisionLog(3, 2);
    for (let i = 1; i <= 5; i++) log.record(i, `m${i}`, `e${i}`, Float64Array.from([i, NaN]), i * 2, 0, i * 10);
    const recent = log.recent();
    assert.deepEqual(recent.map((d) => d.model), ['m5', 'm4', 'm3']);
    assert.deepEqual([...recent[0].scores].map(String), ['5', 'NaN']);
    assert.deepEqual([recent[0].at, recent[0].endpoint, recent[0].total, recent[0].queuedMs], [5, 'e5', 10, 50]);
    log.record(6, 'm6', 'e6', Float64Array.from([6, 6]), 0, 0, 0);
    assert.equal(recent[0].model, 'm5');
    assert.equal(recent[0].scores[0], 5);
  });

  test('empty until something is recorded', () => {
    assert.deepEqual(new DecisionLog(4, 1).recent(), []);
  });
});
