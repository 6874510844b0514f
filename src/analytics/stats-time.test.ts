import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isoAtOffset, offsetText, parseOffset } from './stats-time.js';

test('a UTC offset is Z, ±hh:mm, ±hhmm or minutes east of UTC, within ±14:00', () => {
  for (const [text, minutes] of [
    ['Z', 0],
    ['+05:30', 330],
    ['+0530', 330],
    ['-08:00', -480],
    ['-0800', -480],
    ['330', 330],
    ['-480', -480],
    ['0', 0],
    ['-0', 0],
    ['+14:00', 840],
    ['-14:00', -840],
    ['840', 840],
  ] as const) {
    assert.equal(parseOffset(text), minutes, text);
  }
  // Hours without minutes read as minutes would be a silent mistake; a space is how a URL's unencoded + arrives.
  for (const text of ['+09', '-08', '09', '+15:00', '841', '+05:60', ' 05:30', 'Asia/Kolkata', '', 'z', '+5:30', '1e2']) {
    assert.equal(parseOffset(text), undefined, text);
  }
  assert.ok(Object.is(parseOffset('0'), 0));
});

test('times are written at the offset, and the offset as ISO-8601 writes it', () => {
  const t = Date.UTC(2025, 0, 15, 20, 0, 0, 5);
  assert.equal(isoAtOffset(t, 0), '2025-01-15T20:00:00.005Z');
  assert.equal(isoAtOffset(t, 330), '2025-01-16T01:30:00.005+05:30');
  assert.equal(isoAtOffset(t, -480), '2025-01-15T12:00:00.005-08:00');
  assert.equal(isoAtOffset(t, -30), '2025-01-15T19:30:00.005-00:30');
  assert.deepEqual([0, 330, -480, -30, 840].map(offsetText), ['Z', '+05:30', '-08:00', '-00:30', '+14:00']);
});
