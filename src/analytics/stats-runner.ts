// Where stats queries run. better-sqlite3 holds its thread for a whole query (2.7 s for a day of 500,000 records by
// app with p99), so for a SQLite file they run in a worker thread with its own read-only connection, never on the
// event loop that serves requests. PostgreSQL works on its own server, and an in-memory SQLite database cannot be
// opened by another thread: both are queried in process.
import { sql } from 'kysely';
import type { Worker } from 'node:worker_threads';
import { spawnWorker } from '../lib/spawn-worker.js';
import { WorkerCalls } from '../lib/worker-calls.js';
import { AnalyticsRecords, type Database } from '../store/index.js';
import type { StatsAnswer, StatsRequest } from './stats-runner-protocol.js';
import type { StatsQuery } from './stats-query.js';
import { runStats, type StatsResult } from './stats-sql.js';

export interface StatsRunner {
  run(query: StatsQuery): Promise<StatsResult>;
  /** Ends the query thread, if one is running; a later run starts another. */
  close(): Promise<void>;
}

/** An idle query thread is closed, so one no caller closes (a gateway that has stopped) holds no connection for long. */
const IDLE_MS = 60_000;
/** How long close() lets the thread finish its query and close its connection before terminating it. */
const CLOSE_WAIT_MS = 5000;

/** @example const stats = openStatsRunner(db); const result = await stats.run(query); */
export function openStatsRunner(db: Database): StatsRunner {
  const records = new AnalyticsRecords(db);
  if (db.dialect !== 'sqlite') return { run: (q) => runStats(records, q), close: async () => {} };
  // The file the connection has open (an absolute path), or '' for an in-memory database.
  let file: Promise<string> | undefined;
  const thread = new StatsThread();
  return {
    async run(q) {
      // A failed lookup is asked again by the next query, not kept as the answer for good.
      file ??= sqliteFile(records).catch((err: unknown) => {
        file = undefined;
        throw err;
      });
      const path = await file;
      return path === '' ? runStats(records, q) : thread.run(path, q);
    },
    close: () => thread.close(),
  };
}

async function sqliteFile(records: AnalyticsRecords): Promise<string> {
  const { rows } = await sql<{ file: string }>`select file from pragma_database_list where name = 'main'`.execute(records.kysely);
  return rows[0]?.file ?? '';
}

class StatsThread {
  #thread: { worker: Worker; calls: WorkerCalls<StatsRequest, StatsAnswer> } | undefined;
  #running = 0;
  #idle: NodeJS.Timeout | undefined;

  async run(file: string, query: StatsQuery): Promise<StatsResult> {
    clearTimeout(this.#idle);
    // A thread that exited (crashed, or closed when idle) failed only the queries it had; a new one takes the next.
    if (!this.#thread || this.#thread.calls.exited) this.#thread = this.#spawn(file);
    const { worker, calls } = this.#thread;
    // WorkerCalls lets a thread not keep the process alive; a query someone awaits must.
    if (this.#running++ === 0) worker.ref();
    try {
      const answer = await calls.call({ type: 'run', query });
      if (answer.type === 'failed') throw new Error(answer.message);
      return answer.result;
    } finally {
      if (--this.#running === 0) {
        worker.unref();
        this.#idle = setTimeout(() => void this.close(), IDLE_MS).unref();
      }
    }
  }

  async close(): Promise<void> {
    clearTimeout(this.#idle);
    const thread = this.#thread;
    this.#thread = undefined;
    await thread?.calls.close({ type: 'close' }, CLOSE_WAIT_MS);
  }

  #spawn(file: string): { worker: Worker; calls: WorkerCalls<StatsRequest, StatsAnswer> } {
    const worker = spawnWorker(import.meta.url, 'stats-runner-worker', { workerData: { file } });
    return { worker, calls: new WorkerCalls(worker, { name: 'analytics stats' }) };
  }
}
