// Exactly-once across SIGKILL: a child process records and stores under load, is killed, and a new process replays.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Registry } from 'prom-client';
import { AnalyticsPipeline } from '../src/analytics/pipeline.js';
import { tempSpoolDirectory, testSettings, useRecordsDatabase } from '../src/analytics/test-records.js';
import { DATABASE_BACKENDS, type TestDatabase } from '../src/store/test-databases.js';
import { moduleArgs } from '../src/lib/module-child.js';

const CHILD = new URL('../src/analytics/test-crash-writer.ts', import.meta.url);

/**
 * Runs the writer until it reports at least `atLeast` records and, when `storing` is given, until it says batches
 * reach the database (on a loaded machine the writer can record thousands before the first insert lands), then
 * SIGKILLs it; returns the last count it reported.
 */
async function killMidLoad(dir: string, target: TestDatabase, tag: string, atLeast: number, storing?: () => Promise<boolean>): Promise<number> {
  const child = spawn(process.execPath, [...moduleArgs(CHILD), dir, target.url, target.schema ?? '', tag], { stdio: ['ignore', 'pipe', 'inherit'] });
  let reported = 0;
  let buffered = '';
  child.stdout.setEncoding('utf8');
  const exited = once(child, 'exit');
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the writer exited early (code ${code})`)));
    let killing = false;
    const kill = () => {
      child.kill('SIGKILL');
      resolve();
    };
    child.stdout.on('data', (text: string) => {
      buffered += text;
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      if (lines.length > 0) reported = Number(lines[lines.length - 1]);
      if (reported < atLeast || killing) return;
      killing = true;
      if (!storing) return kill();
      void (async () => {
        while (!(await storing())) await new Promise((r) => setTimeout(r, 10));
        kill();
      })().catch(reject);
    });
  });
  const [, signal] = await exited;
  assert.equal(signal, 'SIGKILL');
  return reported;
}

for (const backend of DATABASE_BACKENDS) {
  describe(`analytics across SIGKILL (${backend.name})`, { skip: backend.skip }, () => {
    const env = useRecordsDatabase(backend);

    async function requestIds(tag: string): Promise<string[]> {
      const rows = await env.records.kysely.selectFrom('analytics_records').select('request_id').where('request_id', 'like', `${tag}-%`).execute();
      return rows.map((r) => r.request_id);
    }

    /** Every reported record is there, exactly once, and nothing but a prefix 0..k-1 of what the child made. */
    function assertPrefix(ids: string[], tag: string, reported: number): void {
      const numbers = ids.map((id) => Number(id.slice(tag.length + 1))).sort((a, b) => a - b);
      assert.ok(numbers.length >= reported, `${numbers.length} stored, ${reported} reported as recorded`);
      numbers.forEach((n, i) => assert.equal(n, i, `record ${i} missing or duplicated`));
    }

    test('killed twice (once while recovering), every completed record is stored exactly once', { timeout: 90_000 }, async () => {
      const dir = tempSpoolDirectory();
      const first = await killMidLoad(dir, env.target, 'a', 3000, async () => (await requestIds('a')).length > 0);
      const storedBeforeReplay = (await requestIds('a')).length;
      assert.ok(storedBeforeReplay > 0 && storedBeforeReplay < first, `killed while storing: ${storedBeforeReplay} of ${first} stored`);
      // The second child starts by replaying the first one's spool, and is killed while doing so and recording.
      const second = await killMidLoad(dir, env.target, 'b', 3000);

      const pipeline = new AnalyticsPipeline({ db: env.db, settings: testSettings(dir, { flushInterval: '1h' }), registry: new Registry() });
      pipeline.start();
      await pipeline.flush();
      assert.equal(pipeline.spooledRecords, 0);
      await pipeline.close();
      assertPrefix(await requestIds('a'), 'a', first);
      assertPrefix(await requestIds('b'), 'b', second);
      const [{ n, distinct }] = await env.records.kysely
        .selectFrom('analytics_records')
        .select((eb) => [eb.fn.countAll<string>().as('n'), eb.fn.count<string>('id').distinct().as('distinct')])
        .execute();
      assert.equal(Number(n), Number(distinct));
    });
  });
}
