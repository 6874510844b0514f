// The pipeline and its directory's lock: refused while another PID namespace's gateway refreshes it (`serve` exits 2
// with that), and a pipeline whose directory was taken over leaves the other process's spool alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { AnalyticsRecords, openDatabase } from '../store/index.js';
import { AnalyticsPipeline } from './pipeline.js';
import { capturingLogger, sampleRecord, tempSpoolDirectory, testSettings } from './test-records.js';

/** A lock as a gateway in another container (another host name, boot and PID namespace, pid 1) writes it. */
const foreignLock = (token: string) => JSON.stringify({ token, pid: 1, host: 'other-container', boot: 'another-boot', pidNamespace: 'pid:[4026532999]' });

test('a directory whose lock another PID namespace keeps refreshing is refused at start', { skip: process.platform === 'linux' ? undefined : 'needs /proc' }, async () => {
  const dir = tempSpoolDirectory();
  const db = await openDatabase('sqlite::memory:');
  const pipeline = new AnalyticsPipeline({ db, settings: testSettings(dir), registry: new Registry() });
  const path = join(dir, 'LOCK');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path, foreignLock('theirs'));
  // Refreshed as often as a real owner does (from another process: the claim blocks this one while it waits).
  const toucher = spawn(process.execPath, ['-e', `const fs = require('fs'); setInterval(() => fs.utimesSync(${JSON.stringify(path)}, new Date(), new Date()), 500)`], { stdio: 'ignore' });
  try {
    const t = performance.now();
    assert.throws(() => pipeline.start(), /analytics directory .* is in use by process 1 on other-container/);
    assert.ok(performance.now() - t < 3000, 'refused at the owner\'s next heartbeat');
    assert.equal(readFileSync(path, 'utf8'), foreignLock('theirs'));
  } finally {
    toucher.kill('SIGKILL');
    await pipeline.close();
    await db.close();
  }
});

test('a pipeline whose directory was taken over stops writing there; its records still reach the database', async () => {
  const dir = tempSpoolDirectory();
  const db = await openDatabase('sqlite::memory:');
  const { logger, lines } = capturingLogger();
  const pipeline = new AnalyticsPipeline({ db, settings: testSettings(dir, { flushInterval: '1h' }), registry: new Registry(), logger });
  const records = new AnalyticsRecords(db);
  try {
    pipeline.start();
    for (let i = 0; i < 10; i++) pipeline.record(sampleRecord(i, { requestId: `taken-${i}` }));
    await pipeline.flush();
    const checkpoint = readFileSync(join(dir, 'checkpoint.json'), 'utf8');
    const files = readdirSync(dir).sort();

    // As another process does once this one's heartbeat has stopped for the grace (its event loop stalled that long).
    for (let i = 10; i < 20; i++) pipeline.record(sampleRecord(i, { requestId: `taken-${i}` }));
    await new Promise((r) => setImmediate(r));
    writeFileSync(join(dir, 'LOCK'), foreignLock('theirs'));
    await pipeline.flush();
    for (let i = 20; i < 30; i++) pipeline.record(sampleRecord(i, { requestId: `taken-${i}` }));
    await pipeline.flush();

    const stored = await records.kysely.selectFrom('analytics_records').select('request_id').where('request_id', 'like', 'taken-%').execute();
    assert.equal(stored.length, 30, 'what it had spooled, and what came after, stored');
    assert.equal(pipeline.spooledRecords, 0);
    assert.ok(lines.some((l) => l.msg === 'the analytics directory was taken over by another process; records go straight to the database until this one restarts' && l.owner === 'process 1 on other-container'));
    assert.ok(!lines.some((l) => l.msg === 'cannot write the analytics spool; records wait in memory and go straight to the database'));
    // Before, it went on checkpointing, appending and deleting in the other process's directory.
    assert.equal(readFileSync(join(dir, 'checkpoint.json'), 'utf8'), checkpoint, 'the checkpoint is the other process\'s now');
    assert.deepEqual(readdirSync(dir).sort(), files, 'no segment created or deleted');
    await pipeline.close();
    assert.equal(readFileSync(join(dir, 'LOCK'), 'utf8'), foreignLock('theirs'), 'its lock stays');
  } finally {
    await pipeline.close();
    await db.close();
  }
});
