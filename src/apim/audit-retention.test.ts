import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as turn } from 'node:timers/promises';
import { silentLogger } from '../lib/logger.js';
import type { AuditLog } from '../store/audit-log.js';
import { AuditRetention } from './audit-retention.js';

/** An audit log whose sweeps take 50 chunks (an event-loop turn each) unless told to stop; what each was asked. */
function slowLog() {
  const sweeps: { keepMs: number; chunks: number }[] = [];
  const audit = {
    async deleteOlderThan(keepMs: number, stop: () => boolean) {
      const sweep = { keepMs, chunks: 0 };
      sweeps.push(sweep);
      do {
        await turn();
        sweep.chunks++;
      } while (sweep.chunks < 50 && !stop());
      return sweep.chunks;
    },
  } as unknown as AuditLog;
  return { audit, sweeps };
}

test('a reload that changes the retention stops the sweep under way and sweeps with the new one', async () => {
  const { audit, sweeps } = slowLog();
  const retention = new AuditRetention(audit, 30, silentLogger);
  retention.start();
  await turn();
  retention.reconfigure(7);
  await retention.sweep();
  await new Promise((resolve) => setTimeout(resolve, 50));
  // Before: the sweep with 30 ran on to its end, and 7 waited for the next hour.
  assert.equal(sweeps.length, 2);
  assert.ok(sweeps[0].keepMs === 30 && sweeps[0].chunks < 50, `stopped early: ${sweeps[0].chunks}`);
  assert.deepEqual(sweeps[1], { keepMs: 7, chunks: 50 });
  await retention.close();
});

test('a reload that removes the retention stops the sweep under way and starts none', async () => {
  const { audit, sweeps } = slowLog();
  const retention = new AuditRetention(audit, 30, silentLogger);
  retention.start();
  await turn();
  retention.reconfigure(undefined);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(sweeps.length, 1);
  assert.ok(sweeps[0].chunks < 50, `stopped early: ${sweeps[0].chunks}`);
  await retention.close();
});

test('a sweep that throws at once (a cutoff the clock cannot name) is logged, never thrown out of the timer', async () => {
  const audit = {
    deleteOlderThan() {
      throw new RangeError('Invalid time value');
    },
  } as unknown as AuditLog;
  const retention = new AuditRetention(audit, 30, silentLogger);
  await retention.sweep();
  await retention.close();
});
