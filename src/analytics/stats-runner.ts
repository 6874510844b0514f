// Where stats queries run. better-sqlite3 holds its thread for a whole query (2.7 s for a day of 500,000 records by
// app with p99), so for a SQLite file they run in a worker thread with its own read-only connection, never on the
// event loop that serves requests. PostgreSQL works on its own server, and an in-memory SQLite database cannot be
// opened by another thread: both are queried in process. On every backend a few run at once, behind a short waiting
// line: on PostgreSQL they share the gateway's pool, where a dozen at once once took every connection the data plane
// and the admin API needed (503 store_unavailable) for as long as they ran.
import { sql } from 'kysely';
import { ConcurrencyLimit } from '../lib/concurrency-limit.js';
import { spawnWorker } from '../lib/spawn-worker.js';
import { OnDemandWorker } from '../lib/on-demand-worker.js';
import { AnalyticsRecords, type Database } from '../store/index.js';
import type { StatsAnswer, StatsRequest } from './stats-runner-protocol.js';
import type { StatsQuery } from './stats-query.js';
import { runStats, type StatsResult } from './stats-sql.js';

export interface StatsRunner {
  /**
   * Rejects with QueueFullError (concurrency-limit.js) when MAX_RUNNING queries run and MAX_WAITING wait, and on
   * PostgreSQL with StatsTimeoutError when the query ran past its statement timeout.
   */
  run(query: StatsQuery): Promise<StatsResult>;
  /** Ends the query thread, if one is running; a later run starts another. */
  close(): Promise<void>;
}

/** An idle query thread is closed, so one no caller closes (a gateway that has stopped) holds no connection for long. */
const IDLE_MS = 60_000;
/** How long close() lets the thread finish its query and close its connection before terminating it. */
const CLOSE_WAIT_MS = 5000;

/** Queries at once: two of the PostgreSQL pool's ten connections, the rest left to the data plane and the admin API. */
const MAX_RUNNING = 2;
/** Queries waiting their turn (a dashboard's panels asking at once); beyond them, a query is refused, not piled up. */
const MAX_WAITING = 8;
/** How long PostgreSQL lets one query run (waits for locks included) before it stops it and frees its connection. */
const STATEMENT_TIMEOUT_MS = 30_000;

/** The database stopped a query that ran past its statement timeout. */
export class StatsTimeoutError extends Error {}

export interface StatsRunnerOptions {
  /** PostgreSQL's statement_timeout for each query (tests shorten it). */
  statementTimeoutMs?: number;
}

/** @example const stats = openStatsRunner(db); const result = await stats.run(query); */
export function openStatsRunner(db: Database, opts: StatsRunnerOptions = {}): StatsRunner {
  const limit = new ConcurrencyLimit(MAX_RUNNING, MAX_WAITING);
  const runner = backendRunner(db, opts.statementTimeoutMs ?? STATEMENT_TIMEOUT_MS);
  return { run: (q) => limit.run(() => runner.run(q)), close: () => runner.close() };
}

/**
 * A SQLite query has no timeout: better-sqlite3 cannot stop one short of ending its thread, and it holds no connection
 * anything else needs, so it runs to its end (the waiting line behind it is what stays bounded).
 */
function backendRunner(db: Database, timeoutMs: number): StatsRunner {
  const records = new AnalyticsRecords(db);
  if (db.dialect !== 'sqlite') return { run: (q) => runWithTimeout(db, q, timeoutMs), close: async () => {} };
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

/**
 * One query in a transaction of its own whose statement_timeout (SET LOCAL) ends with it: the server stops the query,
 * which a client giving up on its answer would not do, and the pooled connection goes back with its own setting.
 */
async function runWithTimeout(db: Database, q: StatsQuery, timeoutMs: number): Promise<StatsResult> {
  try {
    return await db.kysely.transaction().execute(async (trx) => {
      await sql`select set_config('statement_timeout', ${String(timeoutMs)}, true)`.execute(trx);
      return runStats(new AnalyticsRecords({ dialect: db.dialect, kysely: trx }), q);
    });
  } catch (err) {
    // 57014 query_canceled: here, by the timeout set above.
    if ((err as { code?: unknown }).code === '57014') throw new StatsTimeoutError(`it ran longer than ${timeoutMs / 1000} s`, { cause: err });
    throw err;
  }
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
