// Quota windows: calendar alignment per unit and interval, calendar quotas from a startTime, month arithmetic.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { TimeUnit } from '../config/apim-kinds.js';
import { periodMs, windowsOf } from './quota-window.js';

const at = (iso: string) => Date.parse(iso);

describe('windowsOf', () => {
  const cases: { name: string; interval: number; unit: TimeUnit; start?: string; now: string; from: string; to: string }[] = [
    { name: 'minute', interval: 1, unit: 'minute', now: '2025-06-04T10:20:30.500Z', from: '2025-06-04T10:20:00Z', to: '2025-06-04T10:21:00Z' },
    { name: '5 minutes', interval: 5, unit: 'minute', now: '2025-06-04T10:23:00Z', from: '2025-06-04T10:20:00Z', to: '2025-06-04T10:25:00Z' },
    { name: 'hour, at the edge', interval: 1, unit: 'hour', now: '2025-06-04T11:00:00Z', from: '2025-06-04T11:00:00Z', to: '2025-06-04T12:00:00Z' },
    { name: 'hour, a millisecond before', interval: 1, unit: 'hour', now: '2025-06-04T10:59:59.999Z', from: '2025-06-04T10:00:00Z', to: '2025-06-04T11:00:00Z' },
    { name: 'day (UTC)', interval: 1, unit: 'day', now: '2025-06-04T23:59:00Z', from: '2025-06-04T00:00:00Z', to: '2025-06-05T00:00:00Z' },
    { name: 'week starts on Monday', interval: 1, unit: 'week', now: '2025-06-08T12:00:00Z', from: '2025-06-02T00:00:00Z', to: '2025-06-09T00:00:00Z' },
    { name: 'month', interval: 1, unit: 'month', now: '2025-02-28T23:00:00Z', from: '2025-02-01T00:00:00Z', to: '2025-03-01T00:00:00Z' },
    { name: 'quarter (3 months)', interval: 3, unit: 'month', now: '2025-05-10T00:00:00Z', from: '2025-04-01T00:00:00Z', to: '2025-07-01T00:00:00Z' },
    { name: 'calendar hour from a startTime', interval: 1, unit: 'hour', start: '2025-06-01T00:30:00Z', now: '2025-06-04T10:10:00Z', from: '2025-06-04T09:30:00Z', to: '2025-06-04T10:30:00Z' },
    { name: 'calendar month from the 15th', interval: 1, unit: 'month', start: '2025-01-15T00:00:00Z', now: '2025-03-10T00:00:00Z', from: '2025-02-15T00:00:00Z', to: '2025-03-15T00:00:00Z' },
    { name: 'calendar month from the 31st clamps', interval: 1, unit: 'month', start: '2025-01-31T00:00:00Z', now: '2025-03-01T00:00:00Z', from: '2025-02-28T00:00:00Z', to: '2025-03-31T00:00:00Z' },
    { name: 'calendar day before its startTime', interval: 1, unit: 'day', start: '2025-06-10T06:00:00Z', now: '2025-06-04T05:00:00Z', from: '2025-06-03T06:00:00Z', to: '2025-06-04T06:00:00Z' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const w = windowsOf(c.interval, c.unit, c.start === undefined ? undefined : at(c.start))(at(c.now));
      assert.deepEqual({ from: new Date(w.startMs).toISOString(), to: new Date(w.endMs).toISOString() }, { from: new Date(at(c.from)).toISOString(), to: new Date(at(c.to)).toISOString() });
    });
  }

  test('the cached window moves on when the clock leaves it, in either direction', () => {
    const windowAt = windowsOf(1, 'month');
    assert.equal(windowAt(at('2025-01-20T00:00:00Z')).startMs, at('2025-01-01T00:00:00Z'));
    assert.equal(windowAt(at('2025-02-01T00:00:00Z')).startMs, at('2025-02-01T00:00:00Z'));
    assert.equal(windowAt(at('2025-01-31T23:59:59Z')).startMs, at('2025-01-01T00:00:00Z'));
  });
});

test('periodMs counts a month as 30 days', () => {
  assert.equal(periodMs(2, 'minute'), 120_000);
  assert.equal(periodMs(1, 'week'), 7 * 86_400_000);
  assert.equal(periodMs(1, 'month'), 30 * 86_400_000);
});
