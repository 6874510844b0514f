import { test } from 'node:test';
import assert from 'node:assert/strict';
import { durationMs, durationMsAtLeast, longDurationMs, parseDuration } from './duration.js';

const messages = (r: { success: boolean; error?: { issues: { message: string }[] } }) => r.error?.issues.map((i) => i.message) ?? [];

test('parseDuration reads every unit and fractions', () => {
  const cases: [string, number][] = [['500ms', 500], ['1.5s', 1500], ['2m', 120_000], ['1h', 3_600_000], ['24d', 2_073_600_000]];
  for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
});

test('durationMs refuses what a timer cannot wait (Node fires a setTimeout over 2^31-1 ms after 1 ms)', () => {
  assert.equal(durationMs.parse('24d'), 24 * 86_400_000);
  for (const text of ['25d', '30d', '365d', `${2 ** 31}ms`, '596h']) {
    const r = durationMs.safeParse(text);
    assert.equal(r.success, false, text);
    assert.deepEqual(messages(r), ['must be at most 24d (the longest a timer can wait)'], text);
  }
});

test('longDurationMs takes any length, for what is compared with the clock', () => {
  assert.equal(longDurationMs.parse('365d'), 365 * 86_400_000);
  assert.deepEqual(messages(longDurationMs.safeParse('soon')), ['invalid duration "soon" (expected e.g. 500ms, 1s, 2m, 1h)']);
});

test('durationMsAtLeast refuses 0 and what is under its minimum, saying 0 is not "off", and keeps the 24d bound', () => {
  const atLeast1ms = durationMsAtLeast('1ms');
  assert.equal(atLeast1ms.parse('1ms'), 1);
  for (const text of ['0s', '0ms', '0.5ms']) assert.deepEqual(messages(atLeast1ms.safeParse(text)), ['must be at least 1ms (0 does not turn it off)'], text);
  assert.deepEqual(messages(atLeast1ms.safeParse('30d')), ['must be at most 24d (the longest a timer can wait)']);
});
