// What an earlier process left in the spool, shown as the pipeline claims it: the stored Responses API answers whose
// creation records the database may not have yet (after a crash), for the data plane to know before any request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { Registry } from 'prom-client';
import { openDatabase, type AnalyticsRecordRow } from '../store/index.js';
import { AnalyticsPipeline } from './pipeline.js';
import { Spool } from './spool.js';
import { sampleRecord, tempSpoolDirectory, testSettings } from './test-records.js';

test('the spooled creation records of stored responses are told as the spool is claimed, before any batch is stored', async () => {
  const dir = tempSpoolDirectory();
  mkdirSync(dir, { recursive: true });
  // As a process SIGKILLed before its batch: lines in a segment, no checkpoint past them.
  const left = new Spool(dir, { segmentBytes: 1 << 20, maxDiskBytes: 1 << 30 });
  left.appendLines([
    `${JSON.stringify(sampleRecord(1, { operation: 'responses', responseId: 'resp_one', appId: 'app-a', endpoint: '10.0.0.1:8000', inputTokens: 30, outputTokens: 4 }))}\n`,
    `${JSON.stringify(sampleRecord(2))}\n`,
    '{"responseId": "resp_damaged", not json\n',
    `${JSON.stringify(sampleRecord(3, { operation: 'responses', responseId: 'resp_two', appId: undefined, endpoint: '10.0.0.2:8000' }))}\n`,
  ]);
  left.close();

  const db = await openDatabase('sqlite::memory:');
  const pipeline = new AnalyticsPipeline({ db, settings: testSettings(dir, { flushInterval: '1h' }), registry: new Registry() });
  const told: [string, AnalyticsRecordRow][] = [];
  pipeline.onBacklogResponse((id, row) => told.push([id, row]));
  try {
    pipeline.start();
    assert.deepEqual(
      told.map(([id, row]) => [id, row.app_id, row.endpoint, row.input_tokens, row.output_tokens]),
      [
        ['resp_one', 'app-a', '10.0.0.1:8000', 30, 4],
        ['resp_two', null, '10.0.0.2:8000', 10, 5],
      ],
    );
  } finally {
    await pipeline.close();
    await db.close();
  }
});
