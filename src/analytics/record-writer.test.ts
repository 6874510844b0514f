// The writer thread's life: started by the first call, ended by close(), and never started again after it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../lib/logger.js';
import { openDatabase } from '../store/index.js';
import { openRecordWriter } from './record-writer.js';
import { recordLine } from './record.js';
import type { RequestContext } from '../gateway/context.js';

test('a call after close() is refused and starts no thread (a late batch kept the process from exiting)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-writer-'));
  const url = `sqlite:${join(dir, 't.db')}`;
  const db = await openDatabase(url);
  const writer = openRecordWriter({ db, databaseUrl: url, logger: silentLogger });
  const line = () => recordLine({ id: 'r', start: performance.now(), method: 'POST', path: '/v1/chat/completions', priority: 0, headers: {} } as unknown as RequestContext).slice(0, -1);
  try {
    assert.equal((await writer.store(line(), 10, 30_000)).stored, 1);
    await writer.close(5_000);
    await assert.rejects(writer.store(line(), 10, 30_000), /after the analytics writer closed/);
    await assert.rejects(writer.deleteChunk(Date.now(), 30_000), /after the analytics writer closed/);
    assert.equal((await db.kysely.selectFrom('analytics_records' as never).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n, 1);
  } finally {
    // Without the refusal, the late call's thread: ended here so that the failure is reported rather than hung.
    await writer.close(5_000);
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
