import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { EndpointStatus } from './endpoint-state.js';
import { RECOVERY_HELD_MS, StatusLog } from './status-log.js';

describe('StatusLog', () => {
  /** The lines for `statuses`, one every 50 ms from 0. */
  const lines = (log: StatusLog, statuses: EndpointStatus[], from = 0) =>
    statuses.map((s, i) => log.note(s, from + i * 50)).filter((l) => l !== null);

  test('a first scrape is no line; each fall is one; a recovery is one once it held', () => {
    const log = new StatusLog();
    assert.deepEqual(lines(log, ['pending', 'ready', 'ready', 'stale', 'unhealthy', 'unhealthy']), [
      { status: 'stale', was: 'ready', flaps: 0 },
      { status: 'unhealthy', was: 'stale', flaps: 0 },
    ]);
    assert.equal(log.note('ready', 1000), null, 'not held yet');
    assert.equal(log.note('ready', 1000 + RECOVERY_HELD_MS - 1), null);
    assert.deepEqual(log.note('ready', 1000 + RECOVERY_HELD_MS), { status: 'ready', was: 'unhealthy', flaps: 0 });
    assert.equal(log.note('ready', 1000 + RECOVERY_HELD_MS + 50), null);
  });

  test('out and back by turns: the fall, then the recovery that held, counting the flaps', () => {
    const log = new StatusLog();
    const flapping = Array.from({ length: 10 }, (): EndpointStatus[] => ['ready', 'stale', 'unhealthy']).flat();
    // Before: 29 lines, stale, unhealthy and recovered by turns.
    assert.deepEqual(lines(log, flapping), [
      { status: 'stale', was: 'ready', flaps: 0 },
      { status: 'unhealthy', was: 'stale', flaps: 0 },
    ]);
    assert.equal(log.note('ready', 2000), null);
    assert.deepEqual(log.note('ready', 2000 + RECOVERY_HELD_MS), { status: 'ready', was: 'unhealthy', flaps: 9 });
  });

  test('an endpoint that never answered is told when it is out, and when it comes (a recovery that held)', () => {
    const log = new StatusLog();
    assert.deepEqual(lines(log, ['pending', 'unhealthy']), [{ status: 'unhealthy', was: 'pending', flaps: 0 }]);
    assert.equal(log.note('ready', 100), null);
    assert.deepEqual(log.note('ready', 100 + RECOVERY_HELD_MS), { status: 'ready', was: 'unhealthy', flaps: 0 });
  });
});
