// Where stats queries run. better-sqlite3 holds its thread for a whole query (2.7 s for a day of 500,000 records by
// app with p99), so for a SQLite file they run in a worker thread with its own read-only connection, never on the
// event loop that serves requests. PostgreSQL works on its own server, and an in-memory SQLite database cannot be
// opened by another thread: both are queried in process.
import { sql } from 'kysely';
import { spawnWorker } from '../lib/spawn-worker.js';
import { OnDemandWorker } from '../lib/on-demand-worker.js';
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
  #worker: OnDemandWorker<StatsRequest, StatsAnswer> | undefined;

  async run(file: string, query: StatsQuery): Promise<StatsResult> {
    // The database file is the gateway's for its whole life: the thread for the first query serves every later one.
    this.#worker ??= new OnDemandWorker({
      spawn: () => spawnWorker(import.meta.url, 'stats-runner-worker', { workerData: { file } }),
      name: 'analytics stats',
      closeRequest: { type: 'close' },
      idleMs: IDLE_MS,
      closeWaitMs: CLOSE_WAIT_MS,
    });
    const answer = await this.#worker.call({ type: 'run', query });
    if (answer.type === 'failed') throw new Error(answer.message);
    return answer.result;
  }

  async close(): Promise<void> {
    await this.#worker?.close();
  }
}
